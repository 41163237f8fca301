"""Training pairs in memory and random aligned patches drawn as a pure function of the iteration.

Each batch depends only on (seed, rank, iteration), so a resumed run sees exactly the batches an
uninterrupted one would, with no sampler state to save. LR images are made once per file and scale
(MATLAB bicubic) and cached on disk, keyed by the file's content.
"""

from __future__ import annotations

import contextlib
import hashlib
import math
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
import platformdirs
import torch
from PIL import Image

from ..errors import UserError
from ..formats.files import atomic_write
from ..media.read import find_images, read_rgb8
from ..media.tensors import to_tensor
from .degradations import Degrader
from .resize import downscale, mod_crop


def cache_dir() -> Path:
    return Path(platformdirs.user_cache_dir("repsr")) / "lr"


@dataclass
class Pair:
    name: str
    hr: np.ndarray  # HxWx3 uint8, a multiple of the scale
    lr: np.ndarray  # (H/s)x(W/s)x3 uint8


def _digest(path: Path) -> str:
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()[:32]


def _cached(key: str, make, refresh: bool = False) -> np.ndarray:
    """Load a PNG from the cache, or make it and store it (atomically) for next time. A cache that cannot be
    written (no home, a file where the folder should be, a full disk) only costs the time to make it again."""
    path = cache_dir() / f"{key}.png"
    if path.exists() and not refresh:
        try:
            with Image.open(path) as im:
                return np.asarray(im.convert("RGB"))
        except OSError:
            path.unlink(missing_ok=True)
    arr = make()
    with contextlib.suppress(OSError):
        atomic_write(path, lambda tmp: Image.fromarray(arr).save(tmp, format="PNG", compress_level=1))
    return arr


def prepare_hr(path: Path, max_side: int | None) -> tuple[np.ndarray, str]:
    """Decode an HR image; images longer than `max_side` shrink by the smallest integer factor that fits."""
    key = _digest(path)
    img = read_rgb8(path)
    if max_side and max(img.shape[:2]) > max_side:
        factor = math.ceil(max(img.shape[:2]) / max_side)
        key = f"{key}_hr{factor}"
        img = _cached(key, lambda: downscale(img, factor))
    return img, key


def load_pair(path: Path, scale: int, max_side: int | None = None, lr_path: Path | None = None) -> Pair:
    hr, key = prepare_hr(path, max_side)
    if min(hr.shape[:2]) < scale:
        raise UserError(f"{hr.shape[1]}x{hr.shape[0]} is smaller than the scale {scale}", path)
    hr = mod_crop(hr, scale)
    if lr_path is not None:
        return Pair(Path(path).stem, hr, read_rgb8(lr_path))
    lr = _cached(f"{key}_x{scale}", lambda: downscale(hr, scale))
    if lr.shape[:2] != (hr.shape[0] // scale, hr.shape[1] // scale):  # a stale cache entry: make it again
        lr = _cached(f"{key}_x{scale}", lambda: downscale(hr, scale), refresh=True)
    return Pair(Path(path).stem, hr, lr)


def check_pair(pair: Pair, scale: int, lr_path: Path) -> None:
    """Given LR images must be the HR size divided by the scale: anything else is the wrong scale's data."""
    if pair.lr.shape[0] * scale != pair.hr.shape[0] or pair.lr.shape[1] * scale != pair.hr.shape[1]:
        raise UserError(
            f"LR size {pair.lr.shape[1]}x{pair.lr.shape[0]} is not HR {pair.hr.shape[1]}x{pair.hr.shape[0]} / {scale}"
            " (data for another scale?)",
            lr_path,
        )


def find_lr_partner(hr_path: Path, hr_root: Path, lr_root: Path, scale: int) -> Path:
    """DIV2K names LR files `0001x4.png` for HR `0001.png`; plain same-name pairs work too."""
    rel = hr_path.relative_to(hr_root)
    for name in (f"{rel.stem}x{scale}{rel.suffix}", rel.name):
        candidate = lr_root / rel.parent / name
        if candidate.exists():
            return candidate
    raise UserError(f"no LR image for {rel} (looked for {rel.stem}x{scale}{rel.suffix})", lr_root)


def detect_lr_root(hr_root: Path, scale: int) -> Path | None:
    """DIV2K layout: `X_HR/` beside `X_LR_bicubic/X{s}/`."""
    hr_root = Path(hr_root)
    if hr_root.name.endswith("_HR"):
        candidate = hr_root.parent / f"{hr_root.name[:-3]}_LR_bicubic" / f"X{scale}"
        if candidate.is_dir():
            return candidate
    return None


@dataclass
class LoadReport:
    used: int
    unreadable: list[str]


def load_pairs(
    root: Path,
    scale: int,
    max_side: int | None = None,
    lr_root: Path | None = None,
    warn=None,
) -> tuple[list[Pair], LoadReport]:
    """All usable pairs below `root`; unreadable images are skipped and reported, not fatal."""
    root = Path(root)
    if not root.exists():
        raise UserError("data folder not found", root)
    paths = find_images(root)
    if not paths:
        raise UserError("no images found (png, jpg, bmp, webp, tiff)", root)
    lr_root = lr_root or detect_lr_root(root, scale)
    pairs, bad = [], []
    for p in paths:
        lr_path = find_lr_partner(p, root, lr_root, scale) if lr_root else None
        try:
            pair = load_pair(p, scale, max_side, lr_path)
        except UserError as exc:  # an undecodable file is skipped and reported, not fatal
            bad.append(str(exc))
            if warn:
                warn(str(exc))
            continue
        if lr_path is not None:
            check_pair(pair, scale, lr_path)
        pairs.append(pair)
    return pairs, LoadReport(len(pairs), bad)


def _augment(lr: np.ndarray, hr: np.ndarray, code: int) -> tuple[np.ndarray, np.ndarray]:
    """The 8 symmetries of the square: bit 0 flips rows, bit 1 flips columns, bit 2 transposes."""
    if code & 1:
        lr, hr = lr[::-1], hr[::-1]
    if code & 2:
        lr, hr = lr[:, ::-1], hr[:, ::-1]
    if code & 4:
        lr, hr = lr.transpose(1, 0, 2), hr.transpose(1, 0, 2)
    return lr, hr


class PatchSampler:
    """Random aligned LR/HR patches; every pixel of the training set is equally likely to be drawn.

    With a `degrader`, the LR patch is made from the augmented HR patch by that pipeline, drawing from the
    same generator, instead of being cut from the clean LR image."""

    def __init__(
        self,
        pairs: list[Pair],
        scale: int,
        patch: int,
        batch: int,
        seed: int,
        rank: int = 0,
        degrader: Degrader | None = None,
    ) -> None:
        self.pairs = [p for p in pairs if min(p.lr.shape[:2]) >= patch]
        if not self.pairs:
            raise UserError(f"every training image is smaller than the LR patch size {patch}")
        self.scale, self.patch, self.batch, self.seed, self.rank = scale, patch, batch, seed, rank
        self.degrader = degrader
        areas = np.array([(p.lr.shape[0] - patch + 1) * (p.lr.shape[1] - patch + 1) for p in self.pairs], float)
        self.weights = areas / areas.sum()

    def batch_at(self, iteration: int, stream: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """The batch for `iteration`: a pure function of (seed, stream, rank, iteration)."""
        rng = np.random.default_rng([self.seed, stream, self.rank, iteration])
        picks = rng.choice(len(self.pairs), size=self.batch, p=self.weights)
        p, s = self.patch, self.scale
        lrs, hrs = [], []
        for idx in picks:
            pair = self.pairs[idx]
            y = int(rng.integers(pair.lr.shape[0] - p + 1))
            x = int(rng.integers(pair.lr.shape[1] - p + 1))
            lr = pair.lr[y : y + p, x : x + p]
            hr = pair.hr[y * s : (y + p) * s, x * s : (x + p) * s]
            lr, hr = _augment(lr, hr, int(rng.integers(8)))
            lrs.append(lr)
            hrs.append(hr)
        lr_batch = self.degrader(hrs, rng) if self.degrader is not None else np.stack(lrs)
        return to_tensor(lr_batch), to_tensor(np.stack(hrs))


class Prefetcher:
    """Makes the batches of the next `workers` iterations in background threads while the current step runs.

    Batches are a pure function of the iteration, so making them ahead changes neither their order nor their
    content: a run with workers is bit-identical to one without. It pays where making a batch is costly
    (realistic degradations) and a core is free beside the training step."""

    def __init__(self, sampler: PatchSampler, workers: int) -> None:
        self.sampler, self.workers = sampler, workers
        self.pool = ThreadPoolExecutor(workers, thread_name_prefix="batches") if workers > 0 else None
        self.pending: dict[int, Future] = {}

    def batch_at(self, iteration: int, end: int) -> tuple[torch.Tensor, torch.Tensor]:
        if self.pool is None:
            return self.sampler.batch_at(iteration)
        for ahead in range(iteration, min(end, iteration + 1 + self.workers)):
            if ahead not in self.pending:
                self.pending[ahead] = self.pool.submit(self.sampler.batch_at, ahead)
        for stale in [k for k in self.pending if k < iteration]:
            self.pending.pop(stale).cancel()
        return self.pending.pop(iteration).result()

    def close(self) -> None:
        if self.pool is not None:
            self.pool.shutdown(wait=True, cancel_futures=True)
            self.pending.clear()
