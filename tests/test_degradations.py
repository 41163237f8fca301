"""Realistic degradations: training pipeline, fixed evaluation settings, codec round trips."""

from __future__ import annotations

import numpy as np
import pytest

from repsr_cli.data.degradations import (
    Degrader,
    LRDegradation,
    codec_roundtrip,
    jpeg,
    make_degrader,
    random_kernel,
    sinc_kernel,
)
from repsr_cli.data.presets import DEGRADATIONS, Stage
from repsr_cli.data.resize import imresize
from repsr_cli.errors import UserError
from repsr_cli.measure import evaluate

from .conftest import shared_path, synthetic_image


def test_eval_settings_parse_and_refuse_in_one_line() -> None:
    assert LRDegradation.parse("none").label == "none"
    assert LRDegradation.parse("JPEG:50") == LRDegradation("jpeg", 50)
    assert LRDegradation.parse("h264:26").label == "h264:26"
    for bad in ("jpeg", "jpeg:0", "jpeg:101", "h264:52", "h264:x", "webp:80", "none:3"):
        with pytest.raises(UserError, match="cannot read the degradation"):
            LRDegradation.parse(bad)


@pytest.mark.parametrize("codec", ["h264", "h265"])
def test_codec_round_trip_keeps_odd_and_tiny_sizes_and_is_deterministic(codec: str) -> None:
    rng = np.random.default_rng(0)
    frames = np.stack([synthetic_image(rng, 37, 53) for _ in range(3)])
    out = codec_roundtrip(frames, codec, 30)
    assert out.shape == frames.shape and out.dtype == np.uint8
    assert np.array_equal(out, codec_roundtrip(frames, codec, 30))
    err_low, err_high = (np.abs(codec_roundtrip(frames, codec, c).astype(int) - frames).mean() for c in (10, 45))
    assert 0 < err_low < err_high  # a higher CRF loses more
    assert codec_roundtrip(frames[:, :9, :11], codec, 30).shape == (3, 9, 11, 3)


def test_jpeg_quality_orders_the_loss() -> None:
    img = synthetic_image(np.random.default_rng(1), 64, 80)
    errs = [np.abs(jpeg(img, q).astype(int) - img).mean() for q in (95, 50, 10)]
    assert 0 < errs[0] < errs[1] < errs[2]


def test_kernels_are_normalised_and_symmetric() -> None:
    k = sinc_kernel(13, np.pi / 2)
    assert k.shape == (13, 13) and abs(k.sum() - 1) < 1e-9 and np.allclose(k, k.T) and np.allclose(k, k[::-1])
    stage = DEGRADATIONS["real"].first
    for kind in stage.kernel_types:
        one = Stage(**{**stage.__dict__, "kernel_types": {kind: 1.0}})
        kernel = random_kernel(one, np.random.default_rng(2))
        assert abs(kernel.sum() - 1) < 1e-9 and kernel.shape[0] % 2 == 1, kind


@pytest.mark.parametrize("name", [n for n, p in DEGRADATIONS.items() if p is not None])
@pytest.mark.parametrize("scale", [2, 4])
def test_degrader_makes_the_lr_batch_from_the_generator_alone(name: str, scale: int) -> None:
    rng = np.random.default_rng(3)
    hrs = [synthetic_image(rng, 24 * scale, 24 * scale) for _ in range(12)]
    degrader = make_degrader(name, scale)
    a = degrader(hrs, np.random.default_rng(7))
    assert a.shape == (12, 24, 24, 3) and a.dtype == np.uint8
    assert np.array_equal(a, degrader(hrs, np.random.default_rng(7)))
    assert not np.array_equal(a, degrader(hrs, np.random.default_rng(8)))
    clean = np.stack([imresize(hr, size=(24, 24)) for hr in hrs])
    assert np.abs(a.astype(int) - clean).mean() > 1  # degraded, not the clean LR


def test_degradation_names() -> None:
    assert make_degrader("bicubic", 4) is None
    assert isinstance(make_degrader("real", 4), Degrader)
    with pytest.raises(UserError, match="unknown degradation 'jpg'"):
        make_degrader("jpg", 4)


def test_degraded_eval_reproduces_the_published_table() -> None:
    """The x4 Set14 cells of issue [1/6]'s table (bicubic and repsr-x4 at JPEG 50 and H.264 CRF 26)."""
    from repsr_cli.deploy.weights import load_model

    pairs = evaluate.load_benchmark(shared_path("benchmark", "Set14"), 4)
    table = {("bicubic", "jpeg:50"): 24.91, ("bicubic", "h264:26"): 24.41, ("repsr-x4", "jpeg:50"): 24.91}
    table[("repsr-x4", "h264:26")] = 24.50
    models = {"bicubic": evaluate.bicubic(4), "repsr-x4": evaluate.network(load_model("repsr-x4"))}
    for setting in ("jpeg:50", "h264:26"):
        degraded = evaluate.degrade_pairs(pairs, LRDegradation.parse(setting))
        for name, upscale in models.items():
            psnr = evaluate.evaluate(upscale, degraded, 4).psnr
            assert abs(psnr - table[(name, setting)]) <= 0.02, (name, setting, psnr)
