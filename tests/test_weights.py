"""Bundled models: which one serves a scale (exact, else nearest larger, else largest), and that each is trained."""

from __future__ import annotations

import dataclasses
from pathlib import Path

import numpy as np
import pytest

from repsr_cli.deploy import weights
from repsr_cli.errors import UserError

from .conftest import add_bundled, shared_path


@pytest.mark.parametrize(
    ("scale", "expected"),
    [
        (2, "repsr-x2"),  # ships
        (1.5, "repsr-x2"),  # nearest scale above, then a downscale
        (3, "repsr-x4"),  # nearest above; the bigger of the two x4 networks
        (4, "repsr-x4"),
        (8, "repsr-x4"),  # nothing above: the largest scale, then an upscale
    ],
)
def test_default_model_for_scale(fake_bundle: Path, scale: float, expected: str) -> None:
    assert weights.default_model_name(scale) == expected


@pytest.mark.parametrize(("scale", "expected"), [(2, "repsr-real-x2"), (4, "repsr-real-x4"), (3, "repsr-real-x4")])
def test_default_real_model_for_scale(fake_bundle: Path, scale: float, expected: str) -> None:
    assert weights.default_model_name(scale, "real") == expected


def test_real_request_without_real_models_falls_back_to_clean(fake_bundle: Path) -> None:
    for path in fake_bundle.glob("repsr-real-*"):
        path.unlink()
    assert weights.default_model_name(2, "real") == "repsr-x2"
    with pytest.raises(UserError, match="needs a bundled real model for x2; none ships$"):
        weights.blend_model("denoise", 2, 0.5)


def test_denoise_interpolates_exactly_between_clean_and_real(fake_bundle: Path) -> None:
    clean, real = weights.load_plain("repsr-x2").state, weights.load_plain("repsr-real-x2").state
    ends = {s: weights.blend_model("denoise", 2, s)[0].state for s in (0.0, 0.5, 1.0)}
    for key, value in clean.items():
        assert np.array_equal(ends[0.0][key], value) and np.array_equal(ends[1.0][key], real[key])
        assert np.allclose(ends[0.5][key], (value + real[key]) / 2, rtol=0, atol=1e-7)
    # nearest scale above, as -s 3
    assert weights.blend_model("denoise", 3, 0.3)[1] == "repsr-x4~repsr-real-x4@denoise=0.3"
    for bad in (-0.1, 1.5):
        with pytest.raises(UserError, match="--denoise must be between 0 and 1"):
            weights.blend_model("denoise", 2, bad)


def test_detail_interpolates_exactly_between_real_and_sharp(fake_bundle: Path) -> None:
    real, sharp = weights.load_plain("repsr-real-x4").state, weights.load_plain("repsr-sharp-x4").state
    ends = {d: weights.blend_model("detail", 4, d)[0].state for d in (0.0, 0.25, 1.0)}
    for key, value in real.items():
        assert np.array_equal(ends[0.0][key], value) and np.array_equal(ends[1.0][key], sharp[key])
        assert np.allclose(ends[0.25][key], 0.75 * value + 0.25 * sharp[key], rtol=0, atol=1e-7)
    assert weights.blend_model("detail", 2, 0.5)[1] == "repsr-real-x2~repsr-sharp-x2@detail=0.5"
    with pytest.raises(UserError, match="--detail must be between 0 and 1"):
        weights.blend_model("detail", 4, 1.01)


def test_detail_refuses_a_blend_across_sizes(fake_bundle: Path) -> None:

    add_bundled(fake_bundle, "repsr-sharp-x4", "base", 4)
    with pytest.raises(UserError, match="needs a bundled real model of repsr-sharp-x4's size"):
        weights.blend_model("detail", 4, 0.5)
    assert weights.default_model_name(4, "sharp", size="small") == "repsr-real-x4"  # no small sharp: real


def test_sharp_models_are_never_a_clean_or_real_default(fake_bundle: Path) -> None:
    assert weights.default_model_name(4) == "repsr-x4"
    assert weights.default_model_name(4, "real") == "repsr-real-x4"
    assert weights.default_model_name(4, "sharp") == "repsr-sharp-x4"


def test_no_bundled_models_is_a_clear_error(fake_bundle: Path) -> None:
    for path in fake_bundle.iterdir():
        path.unlink()
    with pytest.raises(UserError, match="no bundled models"):
        weights.default_model_name(4)


def test_every_bundled_model_clearly_beats_bicubic_on_set5() -> None:
    """Catches a shipped file that is untrained, miswired or tagged with the wrong scale."""
    from repsr_cli.measure import evaluate

    set5 = shared_path("benchmark", "Set5")
    bundled = [e for e in weights.available_models() if e.source == "bundled"]
    assert {"repsr-x2", "repsr-x3", "repsr-x4", "repsr-tiny-x4"} <= {e.name for e in bundled}
    for entry in bundled:
        net = weights.load_model(entry.path)
        pairs = evaluate.load_benchmark(set5, net.cfg.scale)
        model = evaluate.evaluate(evaluate.network(net), pairs, net.cfg.scale).psnr
        base = evaluate.evaluate(evaluate.bicubic(net.cfg.scale), pairs, net.cfg.scale).psnr
        if weights.model_family(entry.name) == "sharp":  # they trade fidelity for crisp edges by design (docs/sharp.md)
            assert model > base - 1.0, (entry.name, model, base)  # an untrained or miswired file is far below
        else:
            assert model > base + 1.0, (entry.name, model, base)  # the weakest, tiny x4, is about 2.2 dB above


def test_size_picks_the_models_of_one_size_and_the_default_is_the_biggest(fake_bundle: Path) -> None:
    from repsr_cli.infer.upscaler import ModelPerInput

    for name in ("repsr-base-x4", "repsr-real-base-x4"):
        add_bundled(fake_bundle, name, "base", 4)
    assert weights.default_model_name(4) == "repsr-base-x4"  # the biggest bundled network
    assert weights.default_model_name(4, "real") == "repsr-real-base-x4"
    assert weights.default_model_name(4, "real", size="small") == "repsr-real-x4"
    chosen = ModelPerInput(4, size="small")
    assert (chosen.models[False].name, chosen.models[True].name) == ("repsr-x4", "repsr-real-x4")
    assert weights.default_model_name(2, size="base") == "repsr-base-x4"  # within a size, the scale rule as always
    assert weights.blend_model("detail", 4, 0.5, size="small")[1] == "repsr-real-x4~repsr-sharp-x4@detail=0.5"
    with pytest.raises(
        UserError, match="--detail needs a bundled base sharp model for x4; none ships: use --size small$"
    ):
        weights.blend_model("detail", 4, 0.5, size="base")  # no base sharp model: refused, not the small one


def test_without_size_a_cpu_takes_the_small_models_and_a_gpu_the_biggest(
    fake_bundle: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    """The one rule (weights.sizes_for) behind images, video and the API: a base model's cost on a CPU buys too
    little (weights/scores.md, gain and cost)."""
    from repsr_cli.infer import upscaler

    add_bundled(fake_bundle, "repsr-real-base-x4", "base", 4)
    assert weights.sizes_for("cpu", None) == weights.CPU_SIZES and weights.sizes_for("cuda", None) is None
    assert weights.sizes_for("cpu", "base") == "base"
    assert upscaler.ModelPerInput(4, device="cpu").models[True].name == "repsr-real-x4"
    chosen = upscaler.ModelPerInput(4, size="base", device="cpu")  # no clean base model: lossy inputs only
    assert chosen.models[True].name == "repsr-real-base-x4"
    with pytest.raises(UserError, match="no bundled base model for lossless inputs .*repsr-real-base-x4 serves"):
        chosen.for_image(lossy=False)
    monkeypatch.setattr(upscaler, "device_name", lambda device: "cuda:0")
    assert upscaler.ModelPerInput(4, device="cuda").models[True].name == "repsr-real-base-x4"


def test_a_blend_without_size_takes_the_biggest_size_that_has_both_ends(fake_bundle: Path) -> None:
    """Base real and sharp models but no base clean one (what ships): --detail blends the base pair, --denoise
    the small pair, instead of refusing for want of a base clean model."""

    for name in ("repsr-real-base-x4", "repsr-sharp-base-x4"):
        add_bundled(fake_bundle, name, "base", 4)
    assert weights.blend_model("detail", 4, 0.5)[1] == "repsr-real-base-x4~repsr-sharp-base-x4@detail=0.5"
    assert weights.blend_model("denoise", 4, 0.5)[1] == "repsr-x4~repsr-real-x4@denoise=0.5"
    with pytest.raises(UserError, match="--denoise needs a bundled clean model of repsr-real-base-x4's size"):
        weights.blend_model("denoise", 4, 0.5, size="base")  # asked for: refused, never another size


def test_the_bundled_model_table_matches_the_files() -> None:
    """Choosing a model reads weights/models.json, never the weights: every bundled file has its row, each row
    its file, with the file's own hash and shape, a known family and the history/ run that made it."""
    table = weights.bundled_table()
    files = {p.stem: p for p in weights.bundled_dir().glob("*.safetensors")}
    assert set(table) == set(files)
    history = Path(__file__).resolve().parents[1] / "history"
    for name, row in table.items():
        assert weights.table_row(files[name], row.family, row.run) == dataclasses.asdict(row)
        assert row.family in weights.FAMILIES and (history / row.run / "config.json").exists()


def test_model_files_read_the_same_without_torch_in_every_float_type(tmp_path: Path) -> None:
    """Our safetensors read through numpy (no torch); float16 and bfloat16 files (numpy has no bfloat16: torch reads
    those) give the same weights as their float32 values, and a .pth of the same state reads alike."""
    import torch
    from safetensors.torch import save_file

    state = {k: torch.from_numpy(np.array(v)) for k, v in weights.load_plain("repsr-tiny-x4").state.items()}
    for dtype in (torch.float32, torch.float16, torch.bfloat16):
        save_file({k: v.to(dtype) for k, v in state.items()}, str(tmp_path / "m.safetensors"))
        torch.save({"params_ema": {k: v.to(dtype) for k, v in state.items()}}, tmp_path / "m.pth")
        for suffix in (".safetensors", ".pth"):
            read = weights.load_plain(tmp_path / f"m{suffix}")
            assert read.shape == (4, 16, 4) and read.layout == "4x16 x4", (dtype, suffix)
            for key, value in state.items():
                assert np.array_equal(read.state[key], value.to(dtype).float().numpy()), (dtype, suffix, key)
