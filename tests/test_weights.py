"""Which bundled model serves a scale: the exact one when it ships, else the nearest larger, else the largest."""

from __future__ import annotations

from pathlib import Path

import pytest

from repsr_cli import weights
from repsr_cli.errors import UserError
from repsr_cli.model import DeployNet, preset_config


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
