"""Where and in which precision the network runs: one resolution of --device and --precision for every command.

Under torchrun each process drives the GPU of its LOCAL_RANK, for training and for file sharding alike.
torch is imported inside the functions, so the CLI can show these choices without loading it.
"""

from __future__ import annotations

import functools
import os
import sys
from pathlib import Path
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


def no_gpu_here() -> bool:
    """True where no device torch could drive besides the CPU can exist, known without importing torch (2 s of
    a single-image command, docs/performance.md): Linux with no NVIDIA driver (/proc/driver/nvidia), no AMD
    compute driver (/dev/kfd, ROCm) and no WSL GPU (/dev/dxg). Elsewhere torch is asked."""
    gpu_signs = ("/proc/driver/nvidia", "/dev/kfd", "/dev/dxg")
    return sys.platform.startswith("linux") and not any(Path(p).exists() for p in gpu_signs)


def device_name(device: str) -> str:
    """resolve_device's answer as text ('cpu', 'cuda:0', 'mps'); torch is imported only where a GPU may be."""
    if device == "cpu" or (device == "auto" and no_gpu_here()):
        return "cpu"
    return str(resolve_device(device))


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


def _cuda_in_use() -> bool:
    """CUDA initialised in this process; never so where torch was not imported (it is not imported for that)."""
    torch = sys.modules.get("torch")
    return torch is not None and torch.cuda.is_available() and torch.cuda.is_initialized()


class PeakMemory:
    """Peak device memory from its creation to `read()`, by CUDA's own counters (no nvidia-smi); None where
    CUDA is not in use."""

    def __init__(self) -> None:
        if _cuda_in_use():
            sys.modules["torch"].cuda.reset_peak_memory_stats()

    def read(self) -> int | None:
        return sys.modules["torch"].cuda.max_memory_allocated() if _cuda_in_use() else None


def host_memory() -> int:
    """Bytes of host memory free for work: MemAvailable from /proc/meminfo, else 4 GiB."""
    try:
        for line in Path("/proc/meminfo").read_text().splitlines():
            if line.startswith("MemAvailable:"):
                return int(line.split()[1]) * 1024
    except OSError:
        pass
    return 4 << 30


@functools.cache
def _cpuinfo() -> tuple[tuple[str, str], ...]:
    """/proc/cpuinfo as (key, value) lines; empty where Linux does not provide it."""
    try:
        text = Path("/proc/cpuinfo").read_text()
    except OSError:
        return ()
    return tuple((key.strip(), value.strip()) for key, _, value in (line.partition(":") for line in text.splitlines()))


# AVX-512 F's companions BW, VL and DQ: what PyTorch reports as AVX512 and its oneDNN bf16 check asks for
AVX512_CORE = frozenset({"avx512bw", "avx512vl", "avx512dq"})


def cpu_flags() -> frozenset[str]:
    """The CPU's feature flags as Linux lists them (`flags` on x86, `Features` on Arm); empty elsewhere."""
    return frozenset(word for key, value in _cpuinfo() if key in ("flags", "Features") for word in value.split())


@functools.cache
def cpu_threads() -> int:
    """Threads for the CPU engines: OMP_NUM_THREADS where set, else the physical cores this process may run on,
    PyTorch's own default, so every engine gets the threads PyTorch's would."""
    with_env = os.environ.get("OMP_NUM_THREADS", "")
    if with_env.isdigit() and int(with_env) > 0:
        return int(with_env)
    allowed = os.sched_getaffinity(0) if hasattr(os, "sched_getaffinity") else set(range(os.cpu_count() or 1))
    cores, cpu, package = set(), None, "0"
    for key, value in _cpuinfo():
        if key == "processor" and value.isdigit():
            cpu = int(value)
        elif key == "physical id":
            package = value
        elif key == "core id" and cpu in allowed:
            cores.add((package, value))
    return len(cores) or len(allowed)


def cpu_name() -> str:
    """The CPU, its widest vector unit, the engines' threads and PyTorch's version (from its metadata: not
    imported), as engine choices are keyed (infer/engines.py) and benchmarks name their machine."""
    import importlib.metadata
    import platform

    models = [value for key, value in _cpuinfo() if key == "model name"]
    model = models[0] if models else platform.processor() or platform.machine()
    flags = cpu_flags()
    isa = "AVX512" if flags >= AVX512_CORE else "AVX2" if "avx2" in flags else "DEFAULT"
    threads = cpu_threads()
    try:
        torch_version = importlib.metadata.version("torch")
    except importlib.metadata.PackageNotFoundError:
        torch_version = "absent"
    return f"{model} ({isa}), {threads} thread{'s' * (threads != 1)}, torch {torch_version}"


def native_bf16(device: torch.device | str) -> bool:
    """bf16 with hardware support: CUDA (Ampere and later); CPUs by the rule of PyTorch's oneDNN check
    (`torch.ops.mkldnn._is_mkldnn_bf16_supported`: AVX-512 BW, VL and DQ on x86, BF16 on Arm), read from the
    CPU flags where Linux lists them, so the CPU engines' choice needs no torch. On AVX2-only CPUs bf16
    measured about 10x slower than fp32 (docs/training-speed.md)."""
    kind = device if isinstance(device, str) else device.type
    if kind == "cpu" and cpu_flags():
        return cpu_flags() >= AVX512_CORE or "bf16" in cpu_flags()
    import torch

    if kind.startswith("cuda"):
        return torch.cuda.is_bf16_supported()
    if kind == "cpu":
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
