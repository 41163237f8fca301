"""The forward-pass engines: ncnn runs every bundled model within one level of PyTorch's fp32, `auto` picks it
on the CPU, and an engine that cannot run is refused in one line before any work."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest
import torch
from PIL import Image

from repsr_cli.errors import UserError
from repsr_cli.infer.engines import ncnn_available, resolve_engine
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.weights import available_models

from .conftest import cli
from .test_bad_input import one_line_error

BUNDLED = sorted(e.name for e in available_models() if e.source == "bundled")
needs_ncnn = pytest.mark.skipif(not ncnn_available(), reason="the ncnn wheel is not installed")


@needs_ncnn
@pytest.mark.parametrize("name", BUNDLED)
def test_ncnn_runs_every_bundled_model_within_one_level_of_torch_fp32(name: str) -> None:
    img = np.random.default_rng(0).integers(0, 256, (37, 45, 3), dtype=np.uint8)
    ours = Upscaler(name, engine="torch", precision="fp32", tile=0).upscale_array(img).astype(int)
    ncnn = Upscaler(name, engine="ncnn", tile=0)
    assert ncnn.engine == "ncnn" and ncnn.precision == "float32"
    assert np.abs(ncnn.upscale_array(img) - ours).max() <= 1


def test_auto_picks_ncnn_on_the_cpu_and_torch_where_only_torch_can_run() -> None:
    cpu = torch.device("cpu")
    assert resolve_engine("auto", cpu, "auto") == ("ncnn" if ncnn_available() else "torch")
    assert resolve_engine("auto", cpu, "auto", compile_model=True) == "torch"
    assert resolve_engine("auto", torch.device("cuda"), "fp16") == "torch"
    assert resolve_engine("torch", cpu, "bf16") == "torch"
    with pytest.raises(UserError, match="unknown engine 'tensorrt'"):
        resolve_engine("tensorrt", cpu, "auto")


@needs_ncnn
def test_ncnn_refuses_what_only_pytorch_does(tmp_path: Path) -> None:
    image = tmp_path / "a.png"
    Image.fromarray(np.zeros((8, 8, 3), dtype=np.uint8)).save(image)
    one_line_error(cli("upscale", image, "--engine", "ncnn", "--compile"), "--compile is PyTorch's")
    one_line_error(cli("upscale", image, "--engine", "ncnn", "--precision", "fp16"), "runs auto, fp32 or bf16")
    one_line_error(cli("upscale", image, "--engine", "vulkan"), "unknown engine 'vulkan'")
    assert not list(tmp_path.glob("a_x4*"))  # refused before any work
