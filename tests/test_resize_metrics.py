"""MATLAB-compatible bicubic and the standard SR metrics, checked against MATLAB's own outputs."""

from __future__ import annotations

import numpy as np
import pytest
from PIL import Image

from repsr_cli.data.resize import downscale, imresize
from repsr_cli.measure import evaluate
from repsr_cli.measure.metrics import psnr_y, ssim_y

from .conftest import shared_path


@pytest.mark.parametrize("scale", [2, 3, 4])
def test_downscale_reproduces_matlab_lr_images(scale: int) -> None:
    root = shared_path("benchmark", "Set5")
    for hr_path in sorted((root / "HR").glob("*.png")):
        hr = np.asarray(Image.open(hr_path).convert("RGB"))
        ref_path = next((root / "LR_bicubic" / f"X{scale}").glob(f"{hr_path.stem}*"))
        ref = np.asarray(Image.open(ref_path).convert("RGB")).astype(int)
        diff = np.abs(downscale(hr, scale).astype(int) - ref)
        assert diff.max() <= 2, hr_path.name
        assert (diff == 0).mean() >= 0.995, hr_path.name


def test_resize_keeps_constant_images_constant() -> None:
    img = np.full((37, 41, 3), 123, np.uint8)
    assert (imresize(img, scale=0.25) == 123).all()
    assert (imresize(img, scale=3) == 123).all()
    assert imresize(img, size=(20, 10)).shape == (20, 10, 3)


def test_metrics_basics() -> None:
    rng = np.random.default_rng(0)
    a = rng.integers(0, 256, (40, 40, 3), dtype=np.uint8)
    assert psnr_y(a, a, 4) == float("inf")
    assert ssim_y(a, a, 4) == pytest.approx(1.0)
    noisy = np.clip(a.astype(int) + rng.integers(-3, 4, a.shape), 0, 255).astype(np.uint8)
    assert 35 < psnr_y(noisy, a, 4) < 60
    assert ssim_y(noisy, a, 4) < 1.0


# Published bicubic rows (standard protocol), as quoted in ../shared/data/README.md.
PUBLISHED = {
    ("Set5", 2): 33.66,
    ("Set5", 3): 30.39,
    ("Set5", 4): 28.42,
    ("B100", 2): 29.56,
    ("B100", 3): 27.21,
    ("B100", 4): 25.96,
}


@pytest.mark.parametrize(("name", "scale"), sorted(PUBLISHED))
def test_bicubic_reproduces_published_rows(name: str, scale: int) -> None:
    pairs = evaluate.load_benchmark(shared_path("benchmark", name), scale)
    result = evaluate.evaluate(evaluate.bicubic(scale), pairs, scale)
    assert result.psnr == pytest.approx(PUBLISHED[(name, scale)], abs=0.02)
