"""Rich progress for upscaling: files and tiles bars with a summary table for images, a frames bar for video."""

from __future__ import annotations

import time

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .batch import Callbacks, Job, Report
from .video import Probe, VideoOptions, VideoReport, frames_expected


class BatchProgress:
    def __init__(self, console: Console, err: Console, total: int) -> None:
        self.err = err
        self.progress = Progress(
            TextColumn("{task.description}"),
            BarColumn(),
            MofNCompleteColumn(),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            disable=not console.is_terminal,  # a log gets the plain per-file lines, not a bar's last frame
        )
        self.files = self.progress.add_task("files", total=total)
        self.tiles = self.progress.add_task("tiles", total=1, visible=False)

    def __enter__(self) -> BatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def callbacks(self) -> Callbacks:
        return Callbacks(self._started, self._tiles_done, self._done)

    def _tiles_done(self, done: int, total: int) -> None:
        self.progress.update(self.tiles, completed=done, total=total)

    def _started(self, job: Job, tiles: int) -> None:
        self.progress.reset(self.tiles, total=tiles, visible=tiles > 1, description=f"tiles of {job.source.name}")

    def _done(self, job: Job, status: str, detail: str) -> None:
        self.progress.advance(self.files)
        self.progress.update(self.tiles, visible=False)
        if status == "failed":
            self.err.print(f"failed: {detail}", markup=False, highlight=False, soft_wrap=True)
        elif status == "skipped":
            self.progress.console.print(f"skipped {job.source}: {detail}", markup=False, highlight=False)
        else:
            self.progress.console.print(f"{job.source} -> {job.target} ({detail})", markup=False, highlight=False)


def summary(report: Report) -> Table:
    table = Table(title="summary")
    cols = ["files", "skipped", "failed", "megapixels", "MP/s", "time"]
    cells = [
        str(report.done),
        str(report.skipped),
        str(len(report.failed)),
        f"{report.megapixels:.2f}",
        f"{report.mp_per_s:.2f}",
        f"{report.seconds:.1f} s",
    ]
    if report.peak_bytes is not None:
        cols.append("peak GPU memory")
        cells.append(f"{report.peak_bytes / 2**20:,.0f} MiB")
    for col in cols:
        table.add_column(col, justify="right")
    table.add_row(*cells, style="red" if report.failed else None)
    return table


class VideoProgress:
    """A frames bar with the running rate."""

    def __init__(self, console: Console, info: Probe, opts: VideoOptions) -> None:
        columns = (
            TextColumn("frames"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[fps]} fps"),
            TimeRemainingColumn(),
        )
        self.progress = Progress(*columns, console=console, disable=not console.is_terminal)
        self.task = self.progress.add_task("frames", total=frames_expected(info, opts), fps="-")
        self.start = time.perf_counter()
        self.base = 0  # frames an interrupted run had kept: counted as done, not in the rate

    def __enter__(self) -> VideoProgress:
        self.progress.start()
        self.start = time.perf_counter()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def on_resume(self, n: int) -> None:
        """A resumed job starts at the frames already done (a reset, so the time left is not skewed by them)."""
        self.base = n
        self.progress.reset(self.task, completed=n, fps="-")
        self.start = time.perf_counter()

    def on_frame(self, n: int) -> None:
        rate = (n - self.base) / max(1e-9, time.perf_counter() - self.start)
        self.progress.update(self.task, completed=n, fps=f"{rate:.1f}")


def video_summary(report: VideoReport, model: str) -> str:
    peak = f"; peak GPU memory {report.peak_bytes / 2**20:,.0f} MiB" if report.peak_bytes is not None else ""
    resumed = f" after the {report.resumed_from} an earlier run kept" if report.resumed_from else ""
    return (
        f"wrote {report.output} with {model}: {report.frames} frames{resumed} in {report.seconds:.1f} s "
        f"({report.frames / report.seconds:.2f} fps; model {100 * report.model_seconds / report.seconds:.0f}%, "
        f"waiting for the decoder {100 * report.decode_wait / report.seconds:.0f}%, for the encoder "
        f"{100 * report.encode_wait / report.seconds:.0f}% of the time{peak})"
    )
