"""Bundled models: which one serves a scale (exact, else nearest larger, else largest), and that each is trained."""

from __future__ import annotations

from pathlib import Path

import pytest

from repsr_cli import weights
from repsr_cli.errors import UserError
from repsr_cli.model import DeployNet, preset_config

from .conftest import shared_path


@pytest.fixture
def fake_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    bundle, user = tmp_path / "bundled", tmp_path / "user"
    bundle.mkdir()
    user.mkdir()
    for name, preset, scale in (("repsr-x2", "tiny", 2), ("repsr-tiny-x4", "tiny", 4), ("repsr-x4", "small", 4)):
        weights.save_deploy(DeployNet(preset_config(preset, scale)), bundle / f"{name}.safetensors")
    monkeypatch.setattr(weights, "bundled_dir", lambda: bundle)
    monkeypatch.setattr(weights, "user_model_dir", lambda: user)
    return bundle


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
