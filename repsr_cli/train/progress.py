"""Live training progress on the terminal (rich): rate, loss, lr, BN phase, ETA, last validation PSNR."""

from __future__ import annotations

from typing import Any

from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn, TimeRemainingColumn


class TrainProgress:
    def __init__(self, console: Console) -> None:
        self.console = console
        self.progress = Progress(
            TextColumn("[bold]train"),
            BarColumn(),
            MofNCompleteColumn(),
            TextColumn("{task.fields[rate]}"),
            TextColumn("loss {task.fields[loss]}"),
            TextColumn("lr {task.fields[lr]}"),
            TextColumn("BN {task.fields[bn]}"),
            TextColumn("PSNR {task.fields[psnr]}"),
            TimeElapsedColumn(),
            TimeRemainingColumn(),
            console=console,
            transient=False,
            disable=not console.is_terminal,  # a log gets a plain line per record instead (update)
        )
        self.task: Any = None

    def __enter__(self) -> TrainProgress:
        return self

    def __exit__(self, *exc: object) -> None:
        if self.task is not None:  # rich prints a blank line on stop, started or not
            self.progress.stop()

    def start(self, total: int, done: int, stop_at: int | None) -> None:
        """Show the bar only once training starts, so an early error prints alone, not under an empty bar."""
        self.progress.start()
        self.task = self.progress.add_task(
            "train",
            total=min(total, stop_at) if stop_at else total,
            completed=done,
            rate="-",
            loss="-",
            lr="-",
            bn="-",
            psnr="-",
        )

    def say(self, message: str) -> None:
        self.progress.console.print(message, markup=False, highlight=False)

    def update(self, record: dict[str, Any]) -> None:
        fields = {"loss": f"{record['loss']:.4f}", "lr": f"{record['lr']:.2e}", "bn": record["bn"]}
        if record.get("it_s"):
            fields["rate"] = f"{record['it_s']:.2f} it/s"
        if "psnr" in record:
            fields["psnr"] = f"{record['psnr']:.2f} dB"
        self.progress.update(self.task, completed=record["iter"], **fields)
        if self.progress.disable:
            total = self.progress.tasks[0].total
            words = [f"iteration {record['iter']}/{total:.0f}", *(f"{k} {v}" for k, v in fields.items())]
            self.say(", ".join(words))
