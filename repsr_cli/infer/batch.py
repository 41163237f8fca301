"""Batch upscaling of files: which files, where each output goes, and a loop that one bad file cannot stop.

Outputs are written atomically (image_io), so an interrupted run leaves no truncated image, and a rerun
skips what exists and continues where it stopped.
"""

from __future__ import annotations

import glob
import os
import time
from collections.abc import Callable
from concurrent.futures import Future, ThreadPoolExecutor
from contextlib import ExitStack
from dataclasses import dataclass, field
from pathlib import Path

from ..distributed import from_env
from ..errors import UserError
from ..formats.files import Busy, check_name, exclusive, sidecar
from ..media.read import find_images, is_our_output, read_image
from ..media.write import EncodeOptions, check_output_size, write_image
from ..runtime import PeakMemory, host_memory
from ..schema import IMAGE_FORMATS, OUTPUT_FORMATS, choices
from .upscaler import ModelPerInput, Upscaler

GLOB_CHARS = set("*?[")


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass(frozen=True)
class OutputPlan:
    output: Path | None = None  # a file (one input) or a folder
    fmt: str | None = None  # png, jpg, webp, tiff, bmp; default: the input's own
    suffix: str = "_x4"
    folder: bool = False  # the output was given as a folder (a trailing /), whatever its name looks like

    def __post_init__(self) -> None:
        if "/" in self.suffix or "\\" in self.suffix or "\0" in self.suffix:
            raise UserError(f"--suffix {self.suffix!r} must be part of a file name (no / or \\)")
        if self.fmt is not None and f".{self.fmt}" not in IMAGE_FORMATS:
            raise UserError(f"unknown --format {self.fmt!r} (use {choices(OUTPUT_FORMATS)})")


@dataclass
class Report:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    megapixels: float = 0.0
    seconds: float = 0.0
    peak_bytes: int | None = None  # device memory at its peak (CUDA), None on the CPU

    @property
    def mp_per_s(self) -> float:
        return self.megapixels / self.seconds if self.seconds > 0 else 0.0


def real_path(path: Path) -> Path:
    """The file a path names, links followed; a link loop stays itself (Path.resolve raises on one), so it is
    reported as unreadable in its turn instead of stopping the batch."""
    return Path(os.path.realpath(path))


def output_suffix(scale: float, width: int | None = None, height: int | None = None, tag: str | None = None) -> str:
    """The default name suffix says what the output is: its size (the factor, or the width and height asked
    for) and, when one was named, the model or blend that made it; a rerun with other settings does not find
    an earlier output under its own name."""
    if width and height:
        size = f"_{width}x{height}"
    else:
        size = f"_w{width}" if width else f"_h{height}" if height else f"_x{scale:g}"
    return f"{size}-{tag}" if tag else size


def check_encode_options(jobs: list[Job], quality: bool, png_compression: bool) -> None:
    """An encoder option given for outputs that have no such setting is a mistake to say, not to ignore."""
    formats = {IMAGE_FORMATS.get(job.target.suffix.lower()) or "?" for job in jobs}
    if not jobs:
        return
    if quality and not formats & {"JPEG", "WEBP"}:
        raise UserError(f"--quality is for JPEG and WebP outputs; these are {choices(sorted(formats))}")
    if png_compression and "PNG" not in formats:
        raise UserError(f"--png-compression is for PNG outputs; these are {choices(sorted(formats))}")


def collect_inputs(
    inputs: list[str | Path], recursive: bool = False, ours: list[Path] | None = None
) -> list[tuple[Path, Path | None]]:
    """(file, folder it was found under) for every input: files as given, folders' images, glob patterns.

    Folder and glob scans leave out files that carry our output marker (an earlier run's outputs), listing
    them in `ours`; a file named as such is always taken. A path that does not exist is kept, so the batch
    reports it as a failure and goes on.
    """
    found: list[tuple[Path, Path | None]] = []
    for item in inputs:
        text = str(item)
        path = Path(text)
        if path.is_dir():
            scanned = [(p, path) for p in find_images(path, recursive)]
        elif not path.exists() and GLOB_CHARS & set(text):
            scanned = [(Path(p), None) for p in sorted(glob.glob(text, recursive=True)) if Path(p).is_file()]
        else:
            found.append((path, None))
            continue
        for src, base in scanned:
            if not is_our_output(src):
                found.append((src, base))
            elif ours is not None:
                ours.append(src)
    seen: set[Path] = set()
    unique = []
    for src, base in found:
        key = real_path(src)
        if key not in seen:
            seen.add(key)
            unique.append((src, base))
    return unique


def _target_name(src: Path, plan: OutputPlan) -> str:
    ext = f".{plan.fmt}" if plan.fmt else src.suffix.lower()
    if ext not in IMAGE_FORMATS:
        ext = ".png"
    return f"{src.stem}{plan.suffix}{ext}"


def plan_jobs(found: list[tuple[Path, Path | None]], plan: OutputPlan) -> list[Job]:
    if not found:
        raise UserError("no images to upscale")
    out = plan.output
    if out is not None:
        check_name(out)
    file_like = out is not None and not plan.folder and out.suffix != "" and not out.is_dir()
    one_file = file_like and len(found) == 1 and found[0][1] is None
    if file_like and not one_file and not out.exists():
        raise UserError(f"names one file, but {len(found)} inputs need a folder (end it with /)", out)
    if out is not None and not one_file and out.exists() and not out.is_dir():
        raise UserError("is a file, but these inputs need an output folder", out)
    if one_file and plan.fmt and IMAGE_FORMATS.get(out.suffix.lower()) != IMAGE_FORMATS.get(f".{plan.fmt}"):
        raise UserError(f"is not a {plan.fmt} file name, but --format asks for {plan.fmt}: use one of them", out)
    jobs = []
    for src, base in found:
        if out is None:
            target = src.with_name(_target_name(src, plan))
        elif one_file:
            target = out
        else:
            rel = src.parent.relative_to(base) if base is not None else Path()
            target = out / rel / _target_name(src, plan)
        jobs.append(Job(src, target))
    return jobs


def my_share(jobs: list[Job]) -> list[Job]:
    """Under torchrun each rank takes every world-th file, so a folder spreads over GPUs and nodes."""
    env = from_env()
    return jobs[env.rank :: env.world]


@dataclass
class Callbacks:
    file_started: Callable[[Job, int], None] = lambda job, tiles: None
    tile_done: Callable[[int, int], None] = lambda done, total: None  # tiles of the image in hand
    file_done: Callable[[Job, str, str], None] = lambda job, status, detail: None  # status: done|skipped|failed


def check_memory(shape: tuple[int, ...], size: tuple[int, int], itemsize: int, path: Path) -> None:
    """Refuse an output that cannot fit in memory (the input, the output, and a float copy when resizing)."""
    channels = shape[2] if len(shape) > 2 else 1
    need = size[0] * size[1] * channels * (itemsize + 4)
    free = host_memory()
    if need > free:
        raise UserError(
            f"output {size[1]}x{size[0]} needs about {need / 2**30:.1f} GiB of memory, {free / 2**30:.1f} GiB is free",
            path,
        )


def check_target(width: int | None, height: int | None) -> None:
    for name, value in (("--width", width), ("--height", height)):
        if value is not None and value < 1:
            raise UserError(f"{name} must be at least 1, got {value}")


def target_size(shape: tuple[int, ...], scale: float, width: int | None, height: int | None) -> tuple[int, int]:
    h, w = shape[:2]
    if width and height:
        return height, width
    if width:
        return max(1, round(h * width / w)), width
    if height:
        return height, max(1, round(w * height / h))
    return max(1, round(h * scale)), max(1, round(w * scale))


def upscale_files(
    upscaler: Upscaler | ModelPerInput,
    jobs: list[Job],
    scale: float,
    width: int | None = None,
    height: int | None = None,
    overwrite: bool = False,
    encode: EncodeOptions | None = None,
    events: Callbacks | None = None,
) -> Report:
    """Upscale each job with the upscaler chosen for its input (`for_image`); the encoder writes file k in a
    thread while the model works on file k + 1 (one write in flight, so at most two outputs are held)."""
    check_target(width, height)
    events = events or Callbacks()
    encode = encode or EncodeOptions()
    report = Report()
    start = time.perf_counter()
    planned: dict[Path, Path] = {}
    sources = {real_path(job.source) for job in jobs}
    writing: tuple[Job, Future, tuple[int, int], str] | None = None

    def failed(job: Job, exc: UserError) -> None:
        report.failed.append(str(job.source))
        message = str(exc)
        if str(job.source) not in message and str(job.target) not in message:  # every failure line names its file
            message = f"{job.source}: {message}"
        events.file_done(job, "failed", message)

    def finish_write() -> None:
        nonlocal writing
        if writing is None:
            return
        job, future, size, name, lock = writing
        writing = None
        try:
            notes = future.result()
        except UserError as exc:
            failed(job, exc)
            return
        finally:
            lock.close()
        report.done += 1
        report.megapixels += size[0] * size[1] / 1e6
        events.file_done(job, "done", "; ".join([f"{size[1]}x{size[0]}, {name}", *notes]))

    def on_tile(done: int, total: int) -> None:
        """Between tiles of the next image: report the previous file as soon as its write has finished."""
        events.tile_done(done, total)
        if writing is not None and writing[1].done():
            finish_write()

    def _run_jobs() -> None:
        nonlocal writing
        with ThreadPoolExecutor(max_workers=1) as writer:
            for job in jobs:
                lock = ExitStack()  # on the output until it is written: a second run writing it is refused
                try:
                    check_name(job.target)  # an input's long name plus the suffix can pass the limit
                    target = real_path(job.target)
                    if target == real_path(job.source):
                        raise UserError("output would overwrite the input; choose another -o or --suffix", job.target)
                    if target in sources:
                        raise UserError(
                            "output would overwrite another input of this batch; choose another -o or --suffix",
                            job.target,
                        )
                    if target in planned:
                        raise UserError(f"same output as {planned[target]}; use --suffix or --format", job.source)
                    planned[target] = job.source
                    try:
                        job.target.parent.mkdir(parents=True, exist_ok=True)
                        lock.enter_context(exclusive(sidecar(job.target, ".lock")))
                    except Busy:
                        raise UserError("another repsr run is writing this output right now", job.target) from None
                    if job.target.exists() and not overwrite:
                        lock.close()
                        report.skipped += 1
                        events.file_done(job, "skipped", f"{job.target} exists (--overwrite replaces it)")
                        continue
                    image = read_image(job.source)
                    size = target_size(image.pixels.shape, scale, width, height)
                    check_output_size(size, job.target)
                    check_memory(image.pixels.shape, size, image.pixels.itemsize, job.source)
                    model = upscaler.for_image(image.lossy, image.quality)
                    events.file_started(job, model.count_tiles(*image.pixels.shape[:2]))
                    image.pixels = model.upscale_array(image.pixels, size, on_tile=on_tile)
                except UserError as exc:
                    lock.close()
                    failed(job, exc)
                    continue
                finish_write()
                writing = (job, writer.submit(write_image, image, job.target, encode), size, model.name, lock)
            finish_write()

    peak = PeakMemory()
    try:
        _run_jobs()
    except (KeyboardInterrupt, SystemExit) as exc:  # Ctrl-C, or SIGTERM (cli._terminate)
        code = 130 if isinstance(exc, KeyboardInterrupt) else exc.code if isinstance(exc.code, int) else 1
        untouched = len(jobs) - report.done - report.skipped - len(report.failed)
        raise UserError(
            f"interrupted: {report.done} of {len(jobs)} files written, {report.skipped} skipped, {len(report.failed)}"
            f" failed, {untouched} not finished (no partial file is left; the same command again skips what is"
            " written)",
            exit_code=code,
        ) from None
    report.seconds = time.perf_counter() - start
    report.peak_bytes = peak.read()
    return report
