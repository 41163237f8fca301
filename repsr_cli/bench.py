"""Throughput measurements shared by `repsr bench` and the scripts in benchmarks/.

Every figure is measured in the calling process, so ratios between rows compare like with like.
"""

from __future__ import annotations

import platform
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from .infer.upscaler import Upscaler, resolve_device
from .model import DeployNet, RepSRNet, fuse, preset_config

DTYPES = {"fp32": torch.float32, "bf16": torch.bfloat16, "fp16": torch.float16}


def machine_name(device: torch.device) -> str:
    if device.type == "cuda":
        return torch.cuda.get_device_name(device)
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    isa = torch.backends.cpu.get_cpu_capability()
    return f"{cpu} ({isa}), {torch.get_num_threads()} threads, torch {torch.__version__}"


def timed(fn: Callable[[], object], device: torch.device, min_time: float = 1.0, min_runs: int = 3) -> float:
    """Median seconds per call after one warm-up call."""
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    fn()
    sync()
    times: list[float] = []
    start = time.perf_counter()
    while len(times) < min_runs or time.perf_counter() - start < min_time:
        t0 = time.perf_counter()
        fn()
        sync()
        times.append(time.perf_counter() - t0)
        if len(times) >= 50:
            break
    return float(np.median(times))


def deploy_flops(net: DeployNet, height: int, width: int) -> float:
    """Multiply-adds x 2 of the plain conv stack on an LR input of height x width."""
    macs = sum(m.weight.numel() for m in net.body if isinstance(m, torch.nn.Conv2d)) * height * width
    return 2.0 * macs


def networks(preset: str, scale: int, seed: int = 0) -> tuple[RepSRNet, DeployNet]:
    torch.manual_seed(seed)
    train_net = RepSRNet(preset_config(preset, scale)).eval()
    return train_net, fuse(train_net)


@dataclass
class Row:
    preset: str
    scale: int
    device: str
    precision: str
    variant: str  # fused | unfused | bicubic
    mp_per_s: float
    gflops: float | None


def model_row(
    net: torch.nn.Module,
    variant: str,
    preset: str,
    scale: int,
    device: torch.device,
    precision: str,
    size: tuple[int, int],
    flops: float | None,
    compile_model: bool = False,
) -> Row:
    dtype = DTYPES[precision]
    net = net.to(device, dtype, memory_format=torch.channels_last).eval()
    if compile_model:
        net = torch.compile(net)
    x = torch.rand(1, 3, *size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run() -> torch.Tensor:
        return net(x)

    seconds = timed(run, device)
    out_mp = size[0] * size[1] * scale * scale / 1e6
    gflops = flops / seconds / 1e9 if flops is not None else None
    return Row(preset, scale, str(device), precision, variant, out_mp / seconds, gflops)


def bicubic_row(preset: str, scale: int, size: tuple[int, int]) -> Row:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8))
    target = (size[1] * scale, size[0] * scale)
    seconds = timed(lambda: img.resize(target, Image.Resampling.BICUBIC), torch.device("cpu"))
    return Row(preset, scale, "cpu", "uint8", "bicubic", size[0] * size[1] * scale * scale / 1e6 / seconds, None)


def conv_gflops(device: torch.device, precision: str, channels: int, side: int) -> float:
    dtype = DTYPES[precision]
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1).to(device, dtype, memory_format=torch.channels_last)
    x = torch.rand(1, channels, side, side, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def run() -> torch.Tensor:
        return conv(x)

    return 2.0 * conv.weight.numel() * side * side / timed(run, device, min_time=0.5) / 1e9


def conv_peak_gflops(device: torch.device, precision: str) -> float:
    """The practical ceiling for a plain 3x3 network here: the best achieved GFLOP/s of single wide 3x3 convs
    over a few channel counts and sizes (one shape alone can hit a slow kernel choice)."""
    shapes = ((64, 128), (128, 64), (128, 128), (256, 64))  # (channels, side)
    return max(conv_gflops(device, precision, c, side) for c, side in shapes)


def precisions_for(device: torch.device) -> list[str]:
    return ["fp32", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]


def bench(
    presets: list[str],
    scales: list[int],
    device_name: str = "cpu",
    size: tuple[int, int] = (128, 128),
    compile_model: bool = False,
    precisions: list[str] | None = None,
) -> dict[str, object]:
    device = resolve_device(device_name)
    precisions = precisions or precisions_for(device)
    rows: list[Row] = []
    for scale in scales:
        for preset in presets:
            train_net, deploy = networks(preset, scale)
            flops = deploy_flops(deploy, *size)
            for precision in precisions:
                rows.append(model_row(deploy, "fused", preset, scale, device, precision, size, flops, compile_model))
                rows.append(model_row(train_net, "unfused", preset, scale, device, precision, size, None))
            rows.append(bicubic_row(preset, scale, size))
    peak = {p: conv_peak_gflops(device, p) for p in precisions}
    return {
        "machine": machine_name(device),
        "input_size": list(size),
        "results": [asdict(r) for r in rows],
        "peak_gflops": peak,
    }


def tile_cost(upscaler: Upscaler, image: np.ndarray, tiles: list[int]) -> dict[int, float]:
    """Output MP/s of the whole upscale_array path per tile size (0 = whole image)."""
    out_mp = image.shape[0] * image.shape[1] * upscaler.scale**2 / 1e6
    result = {}
    for tile in tiles:
        upscaler.tile = tile
        result[tile] = out_mp / timed(lambda: upscaler.upscale_array(image), upscaler.device)
    return result
