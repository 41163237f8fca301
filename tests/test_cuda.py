"""The CUDA path: run with `-m cuda` on a GPU machine (benchmarks/gpu_check.py does); skipped elsewhere."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from repsr_cli.deploy.weights import available_models, load_model
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.infer.video import probe, upscale_video
from repsr_cli.measure import evaluate

from .conftest import shared_path

ROOT = Path(__file__).resolve().parents[1]
cuda = pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")


def set5() -> Path:
    """Set5 from REPSR_SET5 (the GPU machine has no ../shared), else ../shared, else skip."""
    given = os.environ.get("REPSR_SET5")
    return Path(given) if given else shared_path("benchmark", "Set5")


@pytest.mark.cuda
@cuda
@pytest.mark.parametrize("name", [e.name for e in available_models() if e.source == "bundled"])
def test_fp16_within_a_fiftieth_of_a_db_of_fp32_on_set5(name: str) -> None:
    net = load_model(name)
    pairs = evaluate.load_benchmark(set5(), net.cfg.scale)
    psnr = {}
    for precision in ("fp32", "fp16"):
        up = Upscaler(load_model(name), device="cuda", precision=precision, tile=0)
        psnr[precision] = evaluate.evaluate(up.upscale_array, pairs, net.cfg.scale).psnr
    assert abs(psnr["fp16"] - psnr["fp32"]) <= 0.02, psnr


@pytest.mark.cuda
@cuda
def test_tiled_equals_whole_image_and_batching_changes_nothing_on_cuda() -> None:
    img = np.random.default_rng(0).integers(0, 65536, (203, 301, 3), dtype=np.uint16)
    whole = Upscaler("repsr-x2", device="cuda", precision="fp32", tile=0).upscale_array(img)
    for batch in (1, 4):
        tiled = Upscaler("repsr-x2", device="cuda", precision="fp32", tile=64, tiles_per_batch=batch)
        assert np.array_equal(tiled.upscale_array(img), whole), batch


@pytest.mark.cuda
@cuda
def test_video_round_trip_on_cuda(tmp_path: Path) -> None:
    from benchmarks.media import synthetic_clip

    src = synthetic_clip(tmp_path / "clip.mp4", "320x180", "25", seconds=1)
    report = upscale_video(Upscaler("repsr-x2", device="cuda"), src, tmp_path / "up.mp4")
    info = probe(tmp_path / "up.mp4")
    assert (info.width, info.height) == (640, 360) and report.frames == 25
    assert report.peak_bytes is not None and report.peak_bytes > 0


def test_gpu_check_without_cuda_says_so_and_exits_0(tmp_path: Path) -> None:
    if torch.cuda.is_available():
        pytest.skip("this machine has CUDA: the full check runs instead (benchmarks/gpu_check.py)")
    done = subprocess.run(
        [sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(tmp_path / "out")],
        capture_output=True,
        text=True,
        timeout=120,
    )
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines() == ["gpu_check: no CUDA device here; nothing to check"]
    assert not (tmp_path / "out").exists()
