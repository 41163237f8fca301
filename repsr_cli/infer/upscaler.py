"""The Upscaler: a deploy network bound to an engine, device and precision, upscaling arrays and PIL images.

Images are processed tile by tile and assembled on the host in their own dtype (uint8 or uint16),
so device memory does not grow with the image and host memory stays near input + output size. The tile loop
is numpy's: torch is imported only where PyTorch runs the network (infer/engines.py).
"""

from __future__ import annotations

import math
import sys
from collections.abc import Callable
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
from PIL import Image

from ..data.resize import imresize
from ..deploy.weights import ModelEntry, blend_model, default_model, load_plain, sizes_for
from ..errors import UserError
from ..formats.deploy import PlainNet, plain_of
from ..media.read import pil_to_array
from ..media.tensors import round_to
from ..media.write import array_to_pil
from ..runtime import device_name
from ..schema import ALPHA_MODES, MODEL_SIZES, choices
from .engines import candidates, fastest, make_engine, resolve_engine
from .tiles import count_tiles, tiles

if TYPE_CHECKING:
    from ..model import DeployNet

MIN_TILE = 32  # the smallest tile side tried when out of memory
# The default tile on a CPU, where the engine has no side of its own (OpenVINO tiles wider networks larger,
# engines.OPENVINO_WIDE_TILE): on a 1280x720 frame, against whole, 1024, 768 and 512, the best side for the tiny
# model in PyTorch fp32, ncnn and OpenVINO bf16, and within 10 % of the best for PyTorch and ncnn at the other
# sizes (benchmarks/cpu_tile.py, docs/performance.md). A 960x540 run had 256 up to 10 % behind.
CPU_TILE = 384
# With the automatic CPU tile, an image of at most this many CPU_TILE tiles' area runs whole (whatever side the
# engine tiles larger images with): a 480x320 image (1.04 tiles)
# ran 1.06-1.15x faster whole than as a tile and a sliver (x4, tiny to base), while 512-pixel tiles (1.78 tiles)
# lost to 384-pixel ones on a 960x540 frame (docs/performance.md, peers and CPU tile tables).
WHOLE_UP_TO_TILES = 1.25
TileProgress = Callable[[int, int], None]  # (tiles done, tiles in all) of the image in hand


def is_out_of_memory(exc: BaseException) -> bool:
    """CUDA raises torch.OutOfMemoryError; MPS, ncnn and OpenVINO a RuntimeError that says so (engines.py)."""
    return type(exc).__name__ == "OutOfMemoryError" or "out of memory" in str(exc).lower()


def finish_resize(arr: np.ndarray, size: tuple[int, int]) -> np.ndarray:
    """High-quality resize (Lanczos, antialiased when shrinking) for scales the model does not do itself."""
    h, w = size
    channels = [
        Image.fromarray(arr[..., c].astype(np.float32), "F").resize((w, h), Image.Resampling.LANCZOS)
        for c in range(arr.shape[2])
    ]
    return round_to(np.stack([np.asarray(c) for c in channels], axis=2), arr.dtype)


def check_options(tile: int | None = None, alpha: str = "bicubic") -> None:
    """The options an Upscaler takes, checked before any model is loaded or any file read."""
    if tile is not None and tile < 0:
        raise UserError(f"--tile must be 0 (whole image) or more, got {tile}")
    if alpha not in ALPHA_MODES:
        raise UserError(f"unknown alpha mode {alpha!r} (use {choices(ALPHA_MODES)})")


def fastest_for(net: PlainNet, precision: str, tile: int) -> tuple[str, str]:
    """(engine, precision) that upscales one `tile`-sided tile of this network fastest on this CPU, among
    engines.candidates (measured the first time, then cached)."""
    image = np.random.default_rng(0).integers(0, 256, (tile, tile, 3), dtype=np.uint8)

    def make(engine: str, precision: str) -> Callable[[], object]:
        upscaler = Upscaler(net, device="cpu", precision=precision, engine=engine, tile=0)
        return lambda: upscaler.upscale_array(image)

    return fastest(candidates("cpu", precision), net.layout, tile, make)


def as_plain(model: str | Path | PlainNet | DeployNet) -> PlainNet:
    """A model name, file, or network as weights the engines build from (a network passed in is copied, so the
    Upscaler never changes the caller's)."""
    if isinstance(model, PlainNet):
        return model
    if isinstance(model, (str, Path)):
        return load_plain(model)
    return plain_of(model)


class Upscaler:
    """`Upscaler("repsr-x4").upscale(image)` for a PIL image or an HxW[xC] uint8/uint16 array.

    Grey images stay grey, alpha is upscaled separately (bicubic, or through the model with
    alpha="model"), 16-bit stays 16-bit. `tile=None` picks a tile size from free memory; 0 = whole image.
    """

    def __init__(
        self,
        model: str | Path | PlainNet | DeployNet = "repsr-x4",
        device: str = "cpu",
        precision: str = "auto",
        tile: int | None = None,
        alpha: str = "bicubic",
        tiles_per_batch: int | None = None,
        compile_model: bool = False,
        name: str | None = None,
        warn: Callable[[str], None] | None = None,
        engine: str = "auto",
    ) -> None:
        check_options(tile, alpha)
        self.model = as_plain(model)
        self.name = name or (str(model) if isinstance(model, (str, Path)) else "custom")
        self.device = device_name(device)
        self.engine = resolve_engine(engine, self.device, precision, compile_model)
        if self.engine == "auto":
            # measured on one tile of the --tile asked, at most CPU_TILE: a huge --tile is not timed thrice (OpenVINO
            # runs wider networks in larger tiles, which only adds to a lead it won at this size)
            self.engine, precision = fastest_for(self.model, precision, min(tile or CPU_TILE, CPU_TILE))
        self._run = make_engine(self.engine, self.model, self.device, precision, compile_model)
        self.precision = self._run.precision
        self.scale = self.model.scale
        self.radius = self.model.receptive_radius
        self.tile = self.auto_tile() if tile is None else tile
        automatic_cpu = tile is None and self.device == "cpu"
        self._whole_up_to = int(WHOLE_UP_TO_TILES * CPU_TILE**2) if automatic_cpu else 0  # pixels, as measured
        self.alpha = alpha
        # Several tiles per forward keep a GPU busy; on a CPU one tile already fills the cores.
        self.tiles_per_batch = tiles_per_batch or (4 if self.device.startswith("cuda") else 1)
        self.warn = warn or (lambda msg: print(f"warning: {msg}", file=sys.stderr))
        self._warned = False

    def for_image(self, lossy: bool, quality: int | None = None) -> Upscaler:
        """The upscaler for one input: this one, whatever the input (see ModelPerInput for the choice)."""
        return self

    def auto_tile(self) -> int:
        """Largest square tile whose activations fit in a quarter of the free memory; on a CPU at most the engine's
        own side or CPU_TILE: larger tiles fall out of cache, smaller ones recompute more margin
        (docs/performance.md, "The CPU tile size")."""
        c, s = self.model.channels, self.scale
        bytes_per_px = self._run.bytes_per_value * (3 * c + 2 * 3 * s * s) * 2
        side = int(math.sqrt(self._run.free_memory() / 4 / bytes_per_px)) - 2 * self.radius
        cap = (self._run.cpu_tile or CPU_TILE) if self.device == "cpu" else 2048
        return max(64, min(side, cap))

    def tile_for(self, height: int, width: int) -> int:
        """The tile side for an image of this size (0: whole)."""
        return 0 if height * width <= self._whole_up_to else self.tile

    def count_tiles(self, height: int, width: int) -> int:
        return count_tiles(height, width, self.tile_for(height, width))

    def _shrunk(self, what: str) -> None:
        """Out of device memory: say so once; the smaller size stays for the rest of the run."""
        self._run.release()
        if not self._warned:
            self._warned = True
            self.warn(f"out of {self.device.split(':')[0]} memory: {what} (kept for the rest of the run)")

    def _forward_splitting(self, batch: np.ndarray, cores: list) -> list[np.ndarray]:
        """Run a batch of tiles; out of memory, halve the batch and run the halves."""
        try:
            return self._run(batch, cores)
        except RuntimeError as exc:
            if not is_out_of_memory(exc) or len(batch) == 1:
                raise
            half = len(batch) // 2
            self.tiles_per_batch = max(1, min(self.tiles_per_batch, half))
            self._shrunk(f"tiles per batch lowered to {self.tiles_per_batch}")
            return self._forward_splitting(batch[:half], cores[:half]) + self._forward_splitting(
                batch[half:], cores[half:]
            )

    def upscale_rgb(self, rgb: np.ndarray, on_tile: TileProgress | None = None) -> np.ndarray:
        """HxWx3 uint8/uint16 -> (sH)x(sW)x3 of the same dtype, tile by tile, exact at tile borders.
        Out of memory with one tile per batch, the tile side is halved and the image done again."""
        while True:
            try:
                return self._upscale_tiles(rgb, on_tile)
            except RuntimeError as exc:
                side = self.tile_for(*rgb.shape[:2]) or max(rgb.shape[:2])
                if not is_out_of_memory(exc) or side <= MIN_TILE:
                    raise
                self.tile, self._whole_up_to = max(MIN_TILE, side // 2), 0
                self._shrunk(f"tile lowered to {self.tile}")

    def _upscale_tiles(self, rgb: np.ndarray, on_tile: TileProgress | None) -> np.ndarray:
        h, w, _ = rgb.shape
        s = self.scale
        out = np.empty((h * s, w * s, 3), dtype=rgb.dtype)
        pending: list = []
        plan = list(tiles(h, w, self.tile_for(h, w), self.radius))
        done = 0

        def flush() -> None:
            nonlocal done
            batch = np.stack([rgb[t.py0 : t.py1, t.px0 : t.px1] for t in pending])
            cores = [(t.y0 - t.py0, t.y1 - t.py0, t.x0 - t.px0, t.x1 - t.px0) for t in pending]
            for t, core in zip(pending, self._forward_splitting(batch, cores), strict=True):
                out[t.y0 * s : t.y1 * s, t.x0 * s : t.x1 * s] = core
                done += 1
                if on_tile is not None:
                    on_tile(done, len(plan))
            pending.clear()

        for t in plan:
            shape = (t.py1 - t.py0, t.px1 - t.px0)
            if pending and (
                len(pending) == self.tiles_per_batch
                or shape != (pending[0].py1 - pending[0].py0, pending[0].px1 - pending[0].px0)
            ):
                flush()
            pending.append(t)
        if pending:
            flush()
        return out

    def _upscale_alpha(self, alpha: np.ndarray, on_tile: TileProgress | None) -> np.ndarray:
        if self.alpha == "model":
            return (
                self.upscale_rgb(np.repeat(alpha[..., None], 3, axis=2), on_tile)
                .mean(axis=2, dtype=np.float64)
                .round()
                .astype(alpha.dtype)
            )
        h, w = alpha.shape
        return round_to(imresize(alpha.astype(np.float64), size=(h * self.scale, w * self.scale)), alpha.dtype)

    def upscale_array(
        self,
        arr: np.ndarray,
        size: tuple[int, int] | None = None,
        on_tile: TileProgress | None = None,
    ) -> np.ndarray:
        """HxW or HxWxC (C = 1, 2, 3, 4) uint8/uint16 -> same layout; `size` = (height, width) to finish at.
        `on_tile(done, total)` counts the tiles of the whole image, alpha through the model included; the total
        grows when an out-of-memory retry shrinks the tile and starts the pass again."""
        arr = np.asarray(arr)
        if (
            arr.dtype not in (np.uint8, np.uint16)
            or arr.ndim not in (2, 3)
            or (arr.ndim == 3 and arr.shape[2] not in (1, 2, 3, 4))
        ):
            raise UserError(f"expected an HxW or HxWxC (C = 1..4) uint8/uint16 array, got {arr.dtype} {arr.shape}")
        squeeze = arr.ndim == 2
        if squeeze:
            arr = arr[..., None]
        colour = arr[..., :3] if arr.shape[2] >= 3 else np.repeat(arr[..., :1], 3, axis=2)
        passes = 2 if arr.shape[2] in (2, 4) and self.alpha == "model" else 1

        def pass_progress(k: int) -> TileProgress | None:
            return None if on_tile is None else lambda done, total: on_tile(k * total + done, passes * total)

        rgb = self.upscale_rgb(np.ascontiguousarray(colour), pass_progress(0))
        planes = (
            [rgb] if arr.shape[2] >= 3 else [rgb.mean(axis=2, dtype=np.float64).round().astype(arr.dtype)[..., None]]
        )
        if arr.shape[2] in (2, 4):
            planes.append(self._upscale_alpha(np.ascontiguousarray(arr[..., -1]), pass_progress(1))[..., None])
        out = np.concatenate(planes, axis=2) if len(planes) > 1 else planes[0]
        if size is not None and size != out.shape[:2]:
            out = finish_resize(out, size)
        return out[..., 0] if squeeze else out

    def upscale(self, image: Image.Image | np.ndarray, size: tuple[int, int] | None = None):
        """PIL image in, PIL image out (8-bit modes); arrays in, arrays out (see upscale_array)."""
        if isinstance(image, Image.Image):
            return array_to_pil(self.upscale_array(pil_to_array(image), size))
        return self.upscale_array(image, size)


# Above this estimated JPEG quality the clean model scores higher than the real one: measured on Set14 and B100
# at qualities 90 and 95, x2 and x4 (weights/scores.md; the real models win at 90 and below, the clean ones at 95).
CLEAN_ABOVE_QUALITY = 90


class ModelPerInput:
    """No model named: the bundled real model (trained on JPEG, video codecs and noise) upscales lossy inputs
    (JPEG up to quality CLEAN_ABOVE_QUALITY, lossy WebP), the clean one lossless inputs (PNG, TIFF, BMP,
    lossless WebP) and near-lossless JPEGs. Each model is loaded once, when an input first needs it;
    `for_image` gives the Upscaler to use, whose `name` says which."""

    def __init__(self, scale: float, size: str | None = None, **options: object) -> None:
        """`size`: a model size (small, base) to take the bundled models of that size only; None: the sizes
        worth their cost on the device (weights.sizes_for: small on a CPU, the biggest bundled elsewhere)."""
        self.scale, self.options = scale, options
        check_options(options.get("tile"), str(options.get("alpha", "bicubic")))  # type: ignore[arg-type]
        device = device_name(str(options.get("device", "auto")))  # cuda without one: now
        engine, precision = str(options.get("engine", "auto")), str(options.get("precision", "auto"))
        resolve_engine(engine, device, precision, bool(options.get("compile_model")))  # now, before any input
        sizes = sizes_for(device.split(":")[0], size)
        self.models: dict[bool, ModelEntry | UserError] = {}
        for real in (False, True):
            try:
                self.models[real] = default_model(scale, "real" if real else "clean", sizes)
            except UserError:  # a size the family lacks: refused for the inputs that need it, not for all
                kinds = (
                    "lossy inputs (JPEG, lossy WebP)"
                    if real
                    else "lossless inputs (PNG, TIFF, BMP, near-lossless JPEG)"
                )
                self.models[real] = UserError(f"--size {size}: no bundled {size} model for {kinds} at x{scale:g}")
        if all(isinstance(m, UserError) for m in self.models.values()):
            raise UserError(f"no bundled {size} model for x{scale:g}; pass -m with a model file")
        self._loaded: dict[str, Upscaler] = {}

    def for_image(self, lossy: bool, quality: int | None = None) -> Upscaler:
        real = lossy and (quality is None or quality <= CLEAN_ABOVE_QUALITY)
        entry = self.models[real]
        if isinstance(entry, UserError):
            other = "; ".join(
                f"{m.name} serves the others" for m in self.models.values() if not isinstance(m, UserError)
            )
            raise UserError(f"{entry} ({other}; use another --size for these)")
        if entry.name not in self._loaded:
            self._loaded[entry.name] = Upscaler(entry.path, name=entry.name, **self.options)
        return self._loaded[entry.name]


def choose_upscaler(
    scale: float | None,
    model: str | None = None,
    knobs: dict[str, float | None] | None = None,
    size: str | None = None,
    video: bool = False,
    **options: object,
) -> Upscaler | ModelPerInput:
    """The one model choice behind `repsr upscale`, `repsr upscale-video` and the API: the model `-m` names, a
    blend of two bundled families (`knobs`: --denoise, --detail; weights.BLENDS), or the bundled default of the
    sizes worth their cost on the device (weights.sizes_for): per input for images (ModelPerInput), the real
    model for video, which has always been through a lossy codec. Two choices at once are refused, rather than
    one silently ignored."""
    if scale is not None and not 0 < scale < math.inf:
        raise UserError(f"--scale must be a positive number, got {scale:g}")
    if size is not None and size not in MODEL_SIZES:
        raise UserError(f"unknown --size {size!r} (use {choices(MODEL_SIZES)})")
    knobs = knobs or {}
    given = [f"--{knob}" for knob, value in knobs.items() if value is not None] + (["-m"] if model else [])
    if len(given) > 1:
        raise UserError(f"{' and '.join(given)} cannot be combined: each one picks the model; use one")
    if model is not None:
        if size is not None:
            raise UserError("--size and -m cannot be combined: -m names the model, whatever its size")
        return Upscaler(model, **options)
    sizes = sizes_for(device_name(str(options.get("device", "auto"))).split(":")[0], size)
    for knob, value in knobs.items():
        if value is not None:
            net, name = blend_model(knob, scale or 4, value, sizes)
            return Upscaler(net, name=name, **options)
    if video:
        entry = default_model(scale or 4, "real", sizes)
        return Upscaler(entry.path, name=entry.name, **options)
    return ModelPerInput(scale or 4, size, **options)
