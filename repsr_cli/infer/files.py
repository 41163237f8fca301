"""Batch upscaling of files: where each output goes, and a loop in which one bad file stops nothing."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from ..errors import UserError
from ..imaging import IMAGE_SUFFIXES
from .image_io import read_image, write_image
from .upscaler import Upscaler


@dataclass(frozen=True)
class Job:
    source: Path
    target: Path


@dataclass
class Report:
    done: int = 0
    skipped: int = 0
    failed: list[str] = field(default_factory=list)
    megapixels: float = 0.0
    seconds: float = 0.0


def default_target(source: Path, scale: int) -> Path:
    return source.with_name(f"{source.stem}_x{scale}{source.suffix}")


def expand_inputs(inputs: list[Path]) -> list[Path]:
    """Files as given; folders contribute their images (not recursing)."""
    files: list[Path] = []
    for p in inputs:
        if p.is_dir():
            files += sorted(c for c in p.iterdir() if c.is_file() and c.suffix.lower() in IMAGE_SUFFIXES)
        else:
            files.append(p)
    return files


def plan_outputs(inputs: list[Path], output: Path | None, scale: int) -> list[Job]:
    files = expand_inputs(inputs)
    if not files:
        raise UserError("no images to upscale", " ".join(map(str, inputs)))
    single_file_out = output is not None and len(files) == 1 and not output.is_dir() and output.suffix != ""
    if output is not None and len(files) > 1 and output.exists() and not output.is_dir():
        raise UserError("is a file, but several inputs need an output folder", output)
    jobs = []
    for src in files:
        if output is None:
            target = default_target(src, scale)
        elif single_file_out:
            target = output
        else:
            target = output / default_target(src, scale).name
        jobs.append(Job(src, target))
    return jobs


def upscale_files(
    upscaler: Upscaler,
    jobs: list[Job],
    overwrite: bool = False,
    say: Callable[[str], None] = print,
    warn: Callable[[str], None] = print,
) -> Report:
    report = Report()
    start = time.perf_counter()
    for job in jobs:
        try:
            if job.target.resolve() == job.source.resolve():
                raise UserError("output would overwrite the input; choose another -o", job.target)
            if job.target.exists() and not overwrite:
                say(f"skipped {job.source}: {job.target} exists (--overwrite replaces it)")
                report.skipped += 1
                continue
            image = read_image(job.source)
            result = upscaler.upscale(image)
            write_image(result, job.target)
        except UserError as exc:
            warn(f"failed: {exc}")
            report.failed.append(str(job.source))
            continue
        report.done += 1
        report.megapixels += result.shape[0] * result.shape[1] / 1e6
        say(f"{job.source} -> {job.target} ({result.shape[1]}x{result.shape[0]})")
    report.seconds = time.perf_counter() - start
    say(f"{report.done} upscaled, {report.skipped} skipped, {len(report.failed)} failed in {report.seconds:.1f} s")
    return report
