"""Where and in which precision the network runs: one resolution of --device and --precision for every command.

Under torchrun each process drives the GPU of its LOCAL_RANK, for training and for file sharding alike.
torch is imported inside the functions, so the CLI can show these choices without loading it.
"""

from __future__ import annotations

import os
from typing import TYPE_CHECKING

from .errors import UserError

if TYPE_CHECKING:
    import torch

PRECISIONS = {"fp32": "float32", "fp16": "float16", "bf16": "bfloat16"}  # name -> torch dtype
PRECISION_CHOICES = ("auto", *PRECISIONS)
PRECISION_HELP = (
    "auto, fp32, fp16 or bf16 (auto: bf16 where the hardware has it, else fp16 on CUDA, else fp32; upscaling on a"
    " CPU, whichever of fp32 and bf16 ran faster there, see --engine)."
)
DEVICE_HELP = "auto, cpu, cuda, cuda:N or mps (auto: cuda if present, else mps, else cpu)."
ENGINES = ("auto", "torch", "ncnn", "openvino")  # what runs the forward pass (infer/engines.py)
ENGINE_HELP = (
    "auto, torch, ncnn or openvino (auto: on the CPU, whichever of PyTorch, OpenVINO (fp32/bf16) and ncnn upscaled"
    " a tile of this network fastest here, measured once and cached; PyTorch on a GPU, with --compile or fp16)."
)


def local_rank() -> int:
    """torchrun's LOCAL_RANK: which GPU of this machine the process drives (0 outside torchrun)."""
    return int(os.environ.get("LOCAL_RANK", 0))


def _cuda_count() -> int:
    import torch

    return torch.cuda.device_count() if torch.cuda.is_available() else 0


def resolve_device(device: str) -> torch.device:
    """auto -> cuda, mps or cpu, in that order; plain `cuda` under torchrun -> cuda:LOCAL_RANK."""
    import torch

    if device == "auto":
        if _cuda_count():
            return torch.device("cuda", local_rank() % _cuda_count())
        if torch.backends.mps.is_available():
            return torch.device("mps")
        return torch.device("cpu")
    try:
        dev = torch.device(device)
    except RuntimeError:
        raise UserError(f"unknown device {device!r} (use {DEVICE_HELP[:-1]})") from None
    if dev.type not in ("cpu", "cuda", "mps"):
        raise UserError(f"unsupported device {device!r} (use auto, cpu, cuda, cuda:N or mps)")
    if dev.type == "cuda":
        if dev.index is None:
            dev = torch.device("cuda", local_rank())
        if dev.index >= _cuda_count():
            raise UserError(
                f"device {str(dev)!r} is not available on this machine ({_cuda_count()} CUDA devices found)"
            )
    if dev.type == "mps" and not torch.backends.mps.is_available():
        raise UserError("device 'mps' is not available on this machine")
    return dev


class PeakMemory:
    """Peak device memory from its creation to `read()`, by CUDA's own counters (no nvidia-smi); None where
    CUDA is not in use."""

    def __init__(self) -> None:
        import torch

        if torch.cuda.is_available() and torch.cuda.is_initialized():
            torch.cuda.reset_peak_memory_stats()

    def read(self) -> int | None:
        import torch

        return torch.cuda.max_memory_allocated() if torch.cuda.is_available() and torch.cuda.is_initialized() else None


def native_bf16(device: torch.device) -> bool:
    """bf16 with hardware support: CUDA (Ampere and later), CPUs where oneDNN has native bf16 (AVX512-BF16,
    AMX). On AVX2-only CPUs bf16 measured about 10x slower than fp32 (docs/training-speed.md)."""
    import torch

    if device.type == "cuda":
        return torch.cuda.is_bf16_supported()
    if device.type == "cpu":
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    return False


def resolve_precision(precision: str, device: torch.device) -> torch.dtype:
    """auto: bf16 where the hardware has it, else fp16 on CUDA, else fp32; the same rule for training
    (autocast) and inference. fp16 is refused on the CPU, where it is emulated."""
    import torch

    if precision == "auto":
        if native_bf16(device):
            return torch.bfloat16
        return torch.float16 if device.type == "cuda" else torch.float32
    if precision not in PRECISIONS:
        raise UserError(f"unknown precision {precision!r} (use {', '.join(PRECISION_CHOICES)})")
    if precision == "fp16" and device.type == "cpu":
        raise UserError("fp16 is not supported on the CPU; use fp32 or bf16")
    if precision == "bf16" and device.type == "cuda" and not torch.cuda.is_bf16_supported():
        raise UserError(f"bf16 is not supported on {torch.cuda.get_device_name(device)}; use fp16 or fp32")
    return getattr(torch, PRECISIONS[precision])
