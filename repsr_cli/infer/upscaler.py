"""The Upscaler: a deploy network bound to a device and precision, upscaling arrays and PIL images."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..imaging import to_array, to_tensor
from ..model import DeployNet
from ..weights import load_model
from .tiles import run_tiled

PRECISIONS = {"fp32": torch.float32, "fp16": torch.float16, "bf16": torch.bfloat16}


def resolve_device(device: str) -> torch.device:
    if device == "auto":
        if torch.cuda.is_available():
            return torch.device("cuda")
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r} (use auto, cpu, cuda, cuda:N or mps)") from None
    if dev.type == "cuda" and (not torch.cuda.is_available() or (dev.index or 0) >= torch.cuda.device_count()):
        raise UserError(
            f"device {device!r} is not available on this machine (CUDA devices: "
            f"{torch.cuda.device_count() if torch.cuda.is_available() else 0})"
        )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' is not available on this machine")
    return dev


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """auto: fp16 on CUDA, fp32 elsewhere (bf16 on AVX2 CPUs measured slower; see docs/performance.md)."""
    if precision == "auto":
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (use auto, fp32, fp16 or bf16)")
    return PRECISIONS[precision]


class Upscaler:
    """`Upscaler("repsr-x4").upscale(image)` for a PIL image or an HxWxC uint8/uint16 array."""

    def __init__(
        self,
        model: str | Path | DeployNet = "repsr-x4",
        device: str = "cpu",
        precision: str = "auto",
        tile: int = 0,
    ) -> None:
        net = model if isinstance(model, DeployNet) else load_model(model)
        self.device = resolve_device(device)
        self.dtype = resolve_precision(precision, self.device)
        self.net = net.to(self.device, self.dtype, memory_format=torch.channels_last).eval()
        self.scale = net.cfg.scale
        self.tile = tile

    @torch.inference_mode()
    def _forward(self, x: torch.Tensor) -> torch.Tensor:
        x = x.to(self.device, self.dtype).contiguous(memory_format=torch.channels_last)
        return self.net(x)

    def upscale_tensor(self, x: torch.Tensor, out_dtype: torch.dtype = torch.float32) -> torch.Tensor:
        """1x3xHxW float in [0, 1] on the host -> 1x3x(sH)x(sW), assembled on the host."""
        _, c, h, w = x.shape
        out = torch.empty(1, c, h * self.scale, w * self.scale, dtype=out_dtype)
        return run_tiled(self._forward, x, self.scale, self.tile, self.net.receptive_radius, out)

    def upscale(self, image: Image.Image | np.ndarray) -> Image.Image | np.ndarray:
        if isinstance(image, Image.Image):
            return Image.fromarray(self.upscale(np.asarray(image.convert("RGB"))))
        arr = np.asarray(image)
        if arr.ndim != 3 or arr.shape[2] != 3 or arr.dtype not in (np.uint8, np.uint16):
            raise UserError(f"expected an HxWx3 uint8 or uint16 array, got {arr.dtype} {arr.shape}")
        return to_array(self.upscale_tensor(to_tensor(arr)), arr.dtype.type)
