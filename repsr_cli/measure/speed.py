"""Throughput measurements shared by `repsr bench` and the scripts in benchmarks/.

Every figure is measured in the calling process, so ratios between rows compare like with like.
"""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass
from typing import TypeVar

import numpy as np
import torch
from PIL import Image

from ..errors import UserError
from ..infer.upscaler import Upscaler
from ..model import DeployNet, RepSRNet, fuse, size_config
from ..runtime import PRECISIONS, cpu_name, resolve_device
from ..schema import MODEL_SIZES

Key = TypeVar("Key")
DTYPES = {name: getattr(torch, dtype) for name, dtype in PRECISIONS.items()}  # runtime's one table


def machine_name(device: torch.device) -> str:
    return torch.cuda.get_device_name(device) if device.type == "cuda" else cpu_name()


def timed_together(
    fns: dict[Key, Callable[[], object]], device: torch.device, rounds: int = 5, min_time: float = 0.2
) -> dict[Key, float]:
    """Median seconds per call of each function (timed_rounds)."""
    return {key: float(np.median(times)) for key, times in timed_rounds(fns, device, rounds, min_time).items()}


def timed_rounds(
    fns: dict[Key, Callable[[], object]], device: torch.device, rounds: int = 5, min_time: float = 0.2
) -> dict[Key, list[float]]:
    """Seconds per call of each function in each round, after one warm-up call each.

    The functions take turns, round after round, so a slow spell on a shared machine falls on all of them
    alike and the ratios between them hold even when the absolute figures drift.
    """
    sync = torch.cuda.synchronize if device.type == "cuda" else (lambda: None)
    for fn in fns.values():
        fn()
        sync()
    samples: dict[Key, list[float]] = {key: [] for key in fns}
    for _ in range(rounds):
        for key, fn in fns.items():
            calls, start = 0, time.perf_counter()
            while calls == 0 or time.perf_counter() - start < min_time:
                fn()
                sync()
                calls += 1
            samples[key].append((time.perf_counter() - start) / calls)
    return samples


def deploy_flops(net: DeployNet, height: int, width: int) -> float:
    """Multiply-adds x 2 of the plain conv stack on an LR input of height x width."""
    macs = sum(m.weight.numel() for m in net.body if isinstance(m, torch.nn.Conv2d)) * height * width
    return 2.0 * macs


def networks(size: str, scale: int, seed: int = 0) -> tuple[RepSRNet, DeployNet]:
    torch.manual_seed(seed)
    train_net = RepSRNet(size_config(size, scale)).eval()
    return train_net, fuse(train_net)


class Branches(torch.nn.Module):
    """The training network computed through its branches: the unfused baseline (run as it is, a RepSRNet in eval
    mode computes its blocks folded, which is the fused network's cost)."""

    def __init__(self, net: RepSRNet) -> None:
        super().__init__()
        self.net = net

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.net.run(x, fold=False)


@dataclass
class Row:
    size: str  # the model size
    scale: int
    device: str
    precision: str
    variant: str  # fused | unfused | bicubic
    mp_per_s: float  # median of the rounds
    gflops: float | None
    mp_per_s_min: float = 0.0  # the slowest round
    mp_per_s_max: float = 0.0  # the fastest round


def forward_fn(
    net: torch.nn.Module, device: torch.device, precision: str, size: tuple[int, int], compile_model: bool = False
) -> Callable[[], torch.Tensor]:
    """One forward of a private copy of `net` in `precision`, on a random channels_last input."""
    dtype = DTYPES[precision]
    net = copy.deepcopy(net).to(device, dtype, memory_format=torch.channels_last).eval()
    run = torch.compile(net) if compile_model else net
    x = torch.rand(1, 3, *size, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward() -> torch.Tensor:
        return run(x)

    return forward


def bicubic_fn(size: tuple[int, int], scale: int) -> Callable[[], Image.Image]:
    img = Image.fromarray(np.random.default_rng(0).integers(0, 256, (*size, 3), dtype=np.uint8))
    target = (size[1] * scale, size[0] * scale)
    return lambda: img.resize(target, Image.Resampling.BICUBIC)


# The practical ceiling for a plain 3x3 network: the best of single wide 3x3 convs over a few channel counts
# and sizes (one shape alone can hit a slow kernel choice). (channels, side)
PEAK_SHAPES = ((64, 128), (128, 64), (128, 128), (256, 64))


def conv_fn(device: torch.device, precision: str, channels: int, side: int) -> tuple[Callable[[], object], float]:
    """A wide 3x3 conv and its FLOPs."""
    conv = torch.nn.Conv2d(channels, channels, 3, padding=1)
    flops = 2.0 * conv.weight.numel() * side * side
    dtype = DTYPES[precision]
    conv = conv.to(device, dtype, memory_format=torch.channels_last)
    x = torch.rand(1, channels, side, side, device=device, dtype=dtype).contiguous(memory_format=torch.channels_last)

    @torch.inference_mode()
    def forward() -> torch.Tensor:
        return conv(x)

    return forward, flops


def precisions_for(device: torch.device) -> list[str]:
    """fp32 and the low precision `auto` would pick; bf16 on CPUs without native bf16 too, where it measures
    how much slower it is (the reason `auto` keeps fp32 there)."""
    return ["fp32", "fp16"] if device.type == "cuda" else ["fp32", "bf16"]


MAX_BENCH_SIDE = 4096  # LR pixels a side: x4 of it is a 16K output, already ~12 GiB in float32 for the base model


def bench(
    sizes: list[str],
    scales: list[int],
    device_name: str = "cpu",
    side: tuple[int, int] = (128, 128),
    compile_model: bool = False,
    precisions: list[str] | None = None,
) -> dict[str, object]:
    """Every row and the conv peak, measured together (timed_together) so their ratios compare like with like."""
    unknown = [p for p in sizes if p not in MODEL_SIZES]
    if unknown:
        raise UserError(f"unknown --size {unknown[0]!r} (use {', '.join(MODEL_SIZES)})")
    if min(side) < 1 or min(scales) < 1:
        raise UserError(f"--side and --scale must be at least 1, got {min(side)} and {min(scales)}")
    if max(side) > MAX_BENCH_SIDE:
        raise UserError(f"--side {max(side)} is above {MAX_BENCH_SIDE}: a benchmark input, not a poster")
    device = resolve_device(device_name)
    precisions = precisions or precisions_for(device)
    out_mp = side[0] * side[1] / 1e6
    fns: dict[tuple, Callable[[], object]] = {}
    flops: dict[tuple, float] = {}
    for scale in scales:
        for size in sizes:
            train_net, deploy = networks(size, scale)
            for precision in precisions:
                fused = (size, scale, precision, "fused")
                fns[fused] = forward_fn(deploy, device, precision, side, compile_model)
                flops[fused] = deploy_flops(deploy, *side)
                fns[(size, scale, precision, "unfused")] = forward_fn(Branches(train_net), device, precision, side)
            fns[(size, scale, "uint8", "bicubic")] = bicubic_fn(side, scale)
    for precision in precisions:
        for channels, conv_side in PEAK_SHAPES:
            key = ("peak", precision, channels, conv_side)
            fns[key], flops[key] = conv_fn(device, precision, channels, conv_side)
    rounds = timed_rounds(fns, device)
    seconds = {key: float(np.median(times)) for key, times in rounds.items()}
    rows = []
    for key in fns:
        if key[0] == "peak":
            continue
        size, scale, precision, variant = key
        gflops = flops[key] / seconds[key] / 1e9 if key in flops else None
        device_used = "cpu" if variant == "bicubic" else str(device)
        mp = out_mp * scale**2
        spread = (mp / max(rounds[key]), mp / min(rounds[key]))
        rows.append(Row(size, scale, device_used, precision, variant, mp / seconds[key], gflops, *spread))
    peak = {
        p: max(flops[key] / seconds[key] / 1e9 for key in fns if key[0] == "peak" and key[1] == p) for p in precisions
    }
    return {
        "machine": machine_name(device),
        "input_size": list(side),
        "results": [asdict(r) for r in rows],
        "peak_gflops": peak,
    }


def tile_cost(net: DeployNet, image: np.ndarray, tiles: list[int], rounds: int = 5, **options: str) -> dict[int, float]:
    """Output MP/s of the whole upscale_array path per tile size (0 = whole image), measured together;
    `options`: the Upscaler's engine and precision."""
    upscalers = {tile: Upscaler(net, tile=tile, **options) for tile in tiles}
    fns = {tile: (lambda up=up: up.upscale_array(image)) for tile, up in upscalers.items()}
    seconds = timed_together(fns, torch.device(upscalers[tiles[0]].device), rounds=rounds)
    out_mp = image.shape[0] * image.shape[1] * net.cfg.scale**2 / 1e6
    return {tile: out_mp / seconds[tile] for tile in tiles}
