"""Which engine runs a deploy network's forward pass: PyTorch, or ncnn on the CPU.

ncnn (Tencent's inference engine, the one realesrgan-ncnn-vulkan and Upscayl ship) runs each 3x3
convolution with Winograd's minimal filtering (F(6x6, 3x3): about 5x fewer multiplications than direct
convolution) and fuses every PReLU into the convolution before it; on the CPU it runs these plain conv stacks
faster than PyTorch does, most for the base models (docs/performance.md, benchmarks/peers.py). The engine
takes the Upscaler's tiles like PyTorch does, so tiling, alpha, 16-bit and the out-of-memory fallback stay one
mechanism. It reads the same network, written for it in memory as ncnn files with float32 weights.
"""

from __future__ import annotations

import functools
from collections.abc import Callable

import numpy as np
import torch

from ..errors import UserError
from ..formats.exports import ncnn_files
from ..model import DeployNet
from ..runtime import ENGINES
from ..schema import choices

NCNN_PRECISIONS = ("auto", "fp32", "bf16")  # auto is fp32: ncnn's bf16 storage gains little and strays further
NCNN_OUT_OF_MEMORY = -100  # ncnn's return code when an allocation fails

Forward = Callable[[torch.Tensor], torch.Tensor]


@functools.cache
def ncnn_available() -> bool:
    try:
        import ncnn  # noqa: F401
    except (ImportError, OSError):
        return False
    return True


def resolve_engine(engine: str, device: torch.device, precision: str, compile_model: bool = False) -> str:
    """The engine that runs: `auto` picks ncnn on the CPU unless the options ask for PyTorch's own features."""
    if engine not in ENGINES:
        raise UserError(f"unknown engine {engine!r} (use {choices(ENGINES)})")
    if engine == "auto":
        wants_torch = device.type != "cpu" or compile_model or precision not in NCNN_PRECISIONS
        return "torch" if wants_torch or not ncnn_available() else "ncnn"
    if engine == "ncnn":
        if not ncnn_available():
            raise UserError("--engine ncnn needs the ncnn wheel: pip install ncnn")
        if device.type != "cpu":
            raise UserError(f"--engine ncnn runs on the CPU only, not on {device.type}")
        if compile_model:
            raise UserError("--compile is PyTorch's; it does not apply to --engine ncnn")
        if precision not in NCNN_PRECISIONS:
            raise UserError(f"--engine ncnn runs {choices(NCNN_PRECISIONS)}, not {precision}")
    return engine


class NcnnForward:
    """The network in ncnn: an N x 3 x H x W float tensor in, N x 3 x sH x sW out, as the PyTorch net."""

    def __init__(self, net: DeployNet, threads: int, bf16: bool = False, winograd: bool = True) -> None:
        import ncnn

        param, self._weights = ncnn_files(net, half=False)  # kept: ncnn may read float32 weights in place
        self._net = ncnn.Net()
        opt = self._net.opt
        opt.num_threads = threads
        opt.use_fp16_storage = opt.use_fp16_packed = opt.use_fp16_arithmetic = False
        opt.use_bf16_storage = opt.use_bf16_packed = bf16
        opt.use_winograd_convolution = winograd  # off only to measure what it brings (benchmarks/peers.py)
        self._net.load_param_mem(param)
        self._net.load_model_mem(self._weights)
        self._mat = ncnn.Mat

    def __call__(self, batch: torch.Tensor) -> torch.Tensor:
        return torch.stack([self._one(np.ascontiguousarray(x.float().numpy())) for x in batch])

    def _one(self, x: np.ndarray) -> torch.Tensor:
        extractor = self._net.create_extractor()
        extractor.input("data", self._mat(x))  # x stays referenced until extract: ncnn reads it in place
        code, out = extractor.extract("output")
        if code == NCNN_OUT_OF_MEMORY:
            raise RuntimeError("ncnn: out of memory")
        if code != 0:
            raise RuntimeError(f"ncnn failed with code {code}")
        return torch.from_numpy(np.array(out))
