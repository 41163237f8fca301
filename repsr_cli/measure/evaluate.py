"""Benchmark evaluation with the standard SR protocol (see metrics.py): one loop for `eval` and validation.

Degraded inputs (`eval --degrade jpeg:50`) follow the same protocol with one step added: the MATLAB-bicubic
LR is degraded (data/degradations.LRDegradation) before the model sees it; HR and metrics are unchanged.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch

from ..data.dataset import Pair, load_pairs
from ..data.degradations import LRDegradation
from ..data.resize import imresize
from ..media.tensors import to_array, to_tensor
from .metrics import halo_share, psnr_y, ssim_y

Upscale = Callable[[np.ndarray], np.ndarray]  # LR uint8 HxWx3 -> SR uint8 HxWx3


@dataclass
class EvalResult:
    psnr: float
    ssim: float
    halo: float  # metrics.halo_share: the share of pixels overshooting the HR's local range
    per_image: list[dict[str, object]] = field(default_factory=list)


def benchmark_root(path: Path) -> Path:
    """Accept a benchmark folder (`Set5/`) or its HR folder (`Set5/HR/`)."""
    path = Path(path)
    return path / "HR" if (path / "HR").is_dir() else path


def load_benchmark(path: Path, scale: int, warn: Callable[[str], None] | None = None) -> list[Pair]:
    """The benchmark's pairs; images that cannot be read (or are smaller than the scale) are passed to
    `warn` and left out, so the caller can name them."""
    pairs, _ = load_pairs(benchmark_root(path), scale, warn=warn)
    scorable = [p for p in pairs if min(p.hr.shape[:2]) > 2 * scale]
    for p in pairs:
        if p not in scorable and warn is not None:
            warn(f"{p.name}: {p.hr.shape[1]}x{p.hr.shape[0]} leaves nothing after the {scale}-pixel border crop")
    return scorable


def degrade_pairs(pairs: list[Pair], degradation: LRDegradation) -> list[Pair]:
    """The same pairs with their LR degraded; made once, then scored for any number of models."""
    if degradation.kind == "none":
        return pairs
    return [Pair(p.name, p.hr, degradation(p.lr)) for p in pairs]


def bicubic(scale: int) -> Upscale:
    return lambda lr: imresize(lr, size=(lr.shape[0] * scale, lr.shape[1] * scale))


def network(net: torch.nn.Module, device: str = "cpu") -> Upscale:
    @torch.no_grad()
    def run(lr: np.ndarray) -> np.ndarray:
        return to_array(net(to_tensor(lr).to(device)))

    return run


def evaluate(upscale: Upscale, pairs: list[Pair], scale: int) -> EvalResult:
    rows = []
    for pair in pairs:
        sr = upscale(pair.lr)
        if sr.shape != pair.hr.shape:
            raise ValueError(f"{pair.name}: output {sr.shape} does not match HR {pair.hr.shape}")
        rows.append(
            {
                "image": pair.name,
                "psnr": psnr_y(sr, pair.hr, scale),
                "ssim": ssim_y(sr, pair.hr, scale),
                "halo": halo_share(sr, pair.hr, scale),
            }
        )
    mean = {key: float(np.mean([r[key] for r in rows])) for key in ("psnr", "ssim", "halo")}
    return EvalResult(**mean, per_image=rows)
