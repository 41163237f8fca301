"""Rich progress for batch upscaling: a files bar, a tiles bar for the current image, a summary table."""

from __future__ import annotations

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn
from rich.table import Table

from .files import Callbacks, Job, Report


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
        )
        self.files = self.progress.add_task("files", total=total)
        self.tiles = self.progress.add_task("tiles", total=1, visible=False)

    def __enter__(self) -> BatchProgress:
        self.progress.start()
        return self

    def __exit__(self, *exc: object) -> None:
        self.progress.stop()

    def callbacks(self) -> Callbacks:
        return Callbacks(self._started, lambda: self.progress.advance(self.tiles), self._done)

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
    for col in ("files", "skipped", "failed", "megapixels", "MP/s", "time"):
        table.add_column(col, justify="right")
    table.add_row(
        str(report.done),
        str(report.skipped),
        str(len(report.failed)),
        f"{report.megapixels:.2f}",
        f"{report.mp_per_s:.2f}",
        f"{report.seconds:.1f} s",
        style="red" if report.failed else None,
    )
    return table
