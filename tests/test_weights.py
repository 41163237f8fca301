"""Bundled models: which one serves a scale (exact, else nearest larger, else largest), and that each is trained."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from repsr_cli import weights
from repsr_cli.errors import UserError

from .conftest import shared_path


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
    assert weights.default_model_name(scale, real=True) == expected


def test_real_request_without_real_models_falls_back_to_clean(fake_bundle: Path) -> None:
    for path in fake_bundle.glob("repsr-real-*"):
        path.unlink()
    assert weights.default_model_name(2, real=True) == "repsr-x2"
    with pytest.raises(UserError, match="needs a bundled repsr-real model"):
        weights.denoise_model(2, 0.5)


def test_denoise_interpolates_exactly_between_clean_and_real(fake_bundle: Path) -> None:
    clean, real = weights.load_model("repsr-x2"), weights.load_model("repsr-real-x2")
    ends = {s: weights.denoise_model(2, s)[0].state_dict() for s in (0.0, 0.5, 1.0)}
    for key, value in clean.state_dict().items():
        assert torch.equal(ends[0.0][key], value) and torch.equal(ends[1.0][key], real.state_dict()[key])
        assert torch.allclose(ends[0.5][key], (value + real.state_dict()[key]) / 2, atol=1e-7)
    assert weights.denoise_model(3, 0.3)[1] == "repsr-x4~repsr-real-x4@0.3"  # nearest scale above, as -s 3
    for bad in (-0.1, 1.5):
        with pytest.raises(UserError, match="--denoise must be between 0 and 1"):
            weights.denoise_model(2, bad)


def test_no_bundled_models_is_a_clear_error(fake_bundle: Path) -> None:
    for path in fake_bundle.iterdir():
        path.unlink()
    with pytest.raises(UserError, match="no bundled models"):
        weights.default_model_name(4)


def test_every_bundled_model_clearly_beats_bicubic_on_set5() -> None:
    """Catches a shipped file that is untrained, miswired or tagged with the wrong scale."""
    from repsr_cli import evaluate

    set5 = shared_path("benchmark", "Set5")
    bundled = [e for e in weights.available_models() if e.source == "bundled"]
    assert {"repsr-x2", "repsr-x3", "repsr-x4", "repsr-tiny-x4"} <= {e.name for e in bundled}
    for entry in bundled:
        net = weights.load_model(entry.path)
        pairs = evaluate.load_benchmark(set5, net.cfg.scale)
        model = evaluate.evaluate(evaluate.network(net), pairs, net.cfg.scale).psnr
        base = evaluate.evaluate(evaluate.bicubic(net.cfg.scale), pairs, net.cfg.scale).psnr
        assert model > base + 1.0, (entry.name, model, base)  # the weakest, tiny x4, is about 2.2 dB above
