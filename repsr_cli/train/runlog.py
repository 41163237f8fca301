"""A run folder's log.jsonl and config.json, read back: for `repsr plot` and the model card's training times."""

from __future__ import annotations

import json
import statistics
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

from ..errors import UserError
from .config import TrainConfig, init_run_name


def parse_log(log: Path) -> list[dict]:
    """The records of a log.jsonl. A torn last line (a crash mid-write) is dropped: the checkpoint it belonged
    to is redone on resume. A bad line elsewhere is an error that names its line number."""
    if log.is_dir():
        raise UserError("is a folder, not a log", log)
    try:
        lines = log.read_text(errors="replace").splitlines()
    except OSError as exc:
        raise UserError(f"cannot read ({exc.strerror or exc})", log) from None
    records = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = json.loads(line)
            if not isinstance(record, dict) or type(record.get("iter")) is not int:
                raise ValueError("a record without an integer 'iter'")
            if not isinstance(record.get("loss"), int | float):
                raise ValueError("a record without a numeric 'loss'")
            if not all(isinstance(record.get(k), int | float | None) for k in ("psnr", "it_s")):
                raise ValueError("a record whose psnr or it_s is not a number")
        except ValueError as exc:
            if number == len(lines):
                break
            reason = exc.msg if isinstance(exc, json.JSONDecodeError) else str(exc)
            raise UserError(f"line {number} is not a log record ({reason})", log) from None
        records.append(record)
    return records


def read_log(run_dir: Path) -> list[dict]:
    log = Path(run_dir) / "log.jsonl"
    if not log.exists():
        raise UserError("no log.jsonl: not a run folder", run_dir)
    return parse_log(log)


def read_config(run_dir: Path, warn: Callable[[str], None] | None = None) -> TrainConfig | None:
    """The run's configuration, when config.json is there and holds a valid one: it names the loss and the
    planned switch. A damaged one is left out (the log alone still plots), and `warn` hears why."""
    path = Path(run_dir) / "config.json"
    try:
        cfg = TrainConfig.from_dict(json.loads(path.read_text()))
        cfg.check()
        return cfg
    except FileNotFoundError:
        return None
    except (OSError, ValueError, TypeError, AttributeError, UserError) as exc:
        if warn is not None:
            warn(f"{path}: left out ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})")
        return None


@dataclass(frozen=True)
class RunSummary:
    """What a run did, from its own log: the source of every training time in the model card."""

    name: str
    iterations: int
    planned: int | None
    step_seconds: float
    median_it_s: float | None
    last_psnr: float | None
    config: TrainConfig | None
    bicubic_psnr: float | None = None  # bicubic upscaling of the validation images: the floor

    @property
    def init_from_run(self) -> str | None:
        """Name of the run this one was initialised from."""
        if self.config is None or not self.config.init_from:
            return None
        return init_run_name(self.config.init_from)

    def line(self) -> str:
        planned = f" of {self.planned:,}" if self.planned else ""
        rate = f", median {self.median_it_s:.2f} it/s" if self.median_it_s else ""
        psnr = f", last validation {self.last_psnr:.3f} dB" if self.last_psnr is not None else ""
        hours = self.step_seconds / 3600
        below = self.last_psnr is not None and self.bicubic_psnr is not None and self.last_psnr < self.bicubic_psnr
        warn = f" (warning: below bicubic's {self.bicubic_psnr:.3f} dB on the same images)" if below else ""
        return f"{self.name}: {self.iterations:,}{planned} iterations, {hours:.2f} h of steps{rate}{psnr}{warn}"


def median_rate(records: list[dict]) -> float | None:
    """Median it/s at the thread count the run started with: a run resumed with more threads (a core freed
    midway) stays comparable with its neighbours. Records from before logs named threads form one group."""
    timed = [r for r in records if r.get("it_s")]
    rates = [r["it_s"] for r in timed if r.get("threads") == timed[0].get("threads")]
    return statistics.median(rates) if rates else None


def summarize(run_dir: Path) -> RunSummary:
    """Step time is the sum over records of (iterations since the previous record) / it_s.

    That counts the optimiser steps and the BN re-estimation at the switch, not validation, which runs
    between timed stretches (see Trainer._maybe_log)."""
    records = read_log(run_dir)
    seconds, previous = 0.0, 0
    for r in records:
        if r.get("it_s"):
            seconds += (r["iter"] - previous) / r["it_s"]
        previous = r["iter"]
    cfg = read_config(run_dir)
    val = [r["psnr"] for r in records if "psnr" in r]
    floors = [r["psnr_bicubic"] for r in records if isinstance(r.get("psnr_bicubic"), float)]
    return RunSummary(
        name=Path(run_dir).resolve().name,
        iterations=previous,
        planned=cfg.iters if cfg else None,
        step_seconds=seconds,
        median_it_s=median_rate(records),
        last_psnr=val[-1] if val else None,
        config=cfg,
        bicubic_psnr=floors[-1] if floors else None,
    )
