"""Tabulate the training runs kept in history/ (the bundled models' lineage) and experiments/ from their own
logs: iterations, step time, rate.

Writes weights/runs.md, the source of the training times in the model card. "with ancestors" adds the runs a
run was initialised from (`--init-from`), so it is the whole training time behind a shipped model.
Run: python benchmarks/training_runs.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repsr_cli.schema import MODEL_SIZES
from repsr_cli.train.runlog import RunSummary, summarize

ROOT = Path(__file__).resolve().parents[1]


def with_ancestors(run: RunSummary, runs: dict[str, RunSummary]) -> float:
    seconds, seen = 0.0, set()
    while run is not None and run.name not in seen:
        seen.add(run.name)
        seconds += run.step_seconds
        run = runs.get(run.init_from_run)
    return seconds


def row(run: RunSummary, runs: dict[str, RunSummary]) -> str:
    cfg = run.config
    size = f"{cfg.size} ({' x '.join(map(str, MODEL_SIZES[cfg.size]))})" if cfg else "?"
    switch = f"{cfg.switch_iter:,}" if cfg and cfg.switch_iter is not None else "-"
    cells = [
        run.name,
        f"x{cfg.scale}" if cfg else "?",
        size,
        cfg.loss.upper() if cfg else "?",
        cfg.degradation if cfg else "?",
        run.init_from_run or "scratch",
        f"{run.iterations:,} / {run.planned:,}" if run.planned else f"{run.iterations:,}",
        switch,
        f"{run.step_seconds / 3600:.2f}",
        f"{with_ancestors(run, runs) / 3600:.2f}",
        f"{run.median_it_s:.2f}" if run.median_it_s else "-",
        f"{run.last_psnr:.3f}" if run.last_psnr is not None else "-",
    ]
    return "| " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--runs", type=Path, nargs="+", default=[ROOT / "history", ROOT / "experiments"])
    ap.add_argument("--out", type=Path, default=ROOT / "weights" / "runs.md")
    args = ap.parse_args()
    kept = (p for home in args.runs for p in home.iterdir() if (p / "log.jsonl").exists())
    folders = sorted(kept, key=lambda p: p.name)
    runs = {s.name: s for s in map(summarize, folders)}
    lines = [
        "# Training runs behind the bundled weights",
        "",
        "From each run's log.jsonl and config.json; produced by `python benchmarks/training_runs.py`.",
        "Iterations up to the last log record, of those planned (runs stopped before the trainer logged its last",
        "stretch on stopping, such as small-x4, fall short of their checkpoint by less than one log interval).",
        "Step hours: the sum over log records of",
        "iterations / logged it/s (optimiser steps and the BN switch, not validation). With ancestors: plus the",
        "runs it was initialised from. LR data: `--degradation` (bicubic: the clean downscale). Last validation:",
        "Set5 PSNR (dB, Y, clean inputs) at the last validation of the run. The strong and moderate runs were",
        "stopped early: they measured the presets the real models did not use (data/presets.py says what).",
        "",
        "| run | scale | size | loss | LR data | initialised from | iterations | BN switch at | step hours "
        "| with ancestors | median it/s | last validation (clean Set5) |",
        "|---|---|---|---|---|---|---|---|---|---|---|---|",
        *(row(run, runs) for run in runs.values()),
    ]
    args.out.write_text("\n".join(lines) + "\n")
    print("\n".join(lines[8:]))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
