"""One lent GPU window used fully and safely: the checks, then training to a hard deadline, all in one folder.

1. benchmarks/gpu_check.py's checks and report (skipped with --no-check);
2. training of the base-size models (`repsr-real-base-x4`, then `repsr-real-base-x2`), each grown from the small
   real model of its scale (its function kept, model/grow.py), with the real degradations made ahead by one
   worker thread per CPU core, at GPU-sized batches, each run stopping cleanly by the deadline (the time left is
   shared among the runs not finished);
3. OUT/session-report.md and .json (what ran, iterations, speed, validation) and every run's checkpoint in
   parts just under 16 MiB (OUT/NAME.pth.partK), so that all of it comes back from the machine;
4. --resume DIR joins the parts a previous window brought back and continues each run exactly.

The training images travel as a data pack (benchmarks/make_data_pack.py) named by --data. Anywhere with CUDA:
    python benchmarks/make_data_pack.py && python benchmarks/gpu_session.py OUT --minutes 12 --data data-pack
--dry-run runs the same path on the CPU with the tiny model for a few iterations (the test suite does).
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import torch

from repsr_cli.errors import UserError
from repsr_cli.measure.speed import machine_name
from repsr_cli.media.read import find_images
from repsr_cli.train.config import TrainConfig
from repsr_cli.train.runlog import read_log
from repsr_cli.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
PART_BYTES = 16 * 2**20 - 2**17  # the machine returns files of at most 16 MiB: a base checkpoint in two parts
SAVE_MARGIN = 90.0  # seconds kept back from the deadline for the last checkpoint, the report and the copy back


@dataclass(frozen=True)
class Run:
    name: str
    scale: int
    grow_from: str  # the small real model of this scale (repo path), grown into the base network
    iters: int = 30_000
    batch: int = 64
    patch: int = 64  # LR patch side


# Grown, not from scratch (model/grow.py): at x4 on the CPU, 500 iterations of the grown network reached 29.88 dB on
# Set5 where the same run from scratch reached 24.66 (experiments/base-init, weights/README.md).
RUNS = (
    Run("real-base-x4", 4, grow_from="history/real-x4/checkpoints/last.pth"),
    Run("real-base-x2", 2, grow_from="history/real-x2/checkpoints/last.pth"),
)


def config(run: Run, work: Path, data: Path, val: Path | None, dry: bool) -> TrainConfig:
    return TrainConfig(
        data=str(data),
        out=str(work / run.name),
        scale=run.scale,
        size="tiny" if dry else "base",
        iters=6 if dry else run.iters,
        batch=2 if dry else run.batch,
        patch=12 if dry else run.patch,
        lr=2e-4,
        warmup=2 if dry else 500,
        bn_batches=2 if dry else 100,
        seed=31,
        val=str(val) if val else None,
        val_every=3 if dry else 2000,
        ckpt_every=3 if dry else 1000,
        log_every=1 if dry else 100,
        precision="fp32" if dry else "auto",
        init_from=None if dry else str(ROOT / run.grow_from),  # the dry run's tiny network is smaller
        degradation="real",
    )


def split(path: Path, out: Path) -> list[str]:
    """path -> out/NAME.partK files of at most PART_BYTES; the bytes joined again are the file exactly."""
    data, names = path.read_bytes(), []
    for k in range(0, max(1, len(data)), PART_BYTES):
        part = out / f"{path.parent.parent.name}.pth.part{k // PART_BYTES}"
        part.write_bytes(data[k : k + PART_BYTES])
        names.append(part.name)
    return names


def join(source: Path, name: str, target: Path) -> bool:
    parts = sorted(source.glob(f"{name}.pth.part*"), key=lambda p: int(p.name.rsplit("part", 1)[1]))
    if not parts:
        return False
    target.parent.mkdir(parents=True, exist_ok=True)
    target.write_bytes(b"".join(p.read_bytes() for p in parts))
    return True


def restore(previous: Path, work: Path) -> None:
    """Each run's checkpoint from its parts, and its log from the previous report."""
    try:
        report = json.loads((previous / "session-report.json").read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"--resume: no readable session-report.json there ({type(exc).__name__})", previous) from None
    logs = {r["run"]: r.get("log", []) for r in report.get("runs", [])}
    for run in RUNS:
        if join(previous, run.name, work / run.name / "checkpoints" / "last.pth") and logs.get(run.name):
            lines = "".join(json.dumps(record) + "\n" for record in logs[run.name])
            (work / run.name / "log.jsonl").write_text(lines)


def train(run: Run, cfg: TrainConfig, seconds: float, workers: int, device: str) -> dict:
    """One run to its share of the time; a run that cannot start or go on (a truncated checkpoint, say) is
    reported as failed and the session goes on with the next, so the window is not lost."""
    resume = (Path(cfg.out) / "checkpoints" / "last.pth").exists()
    try:
        trainer = Trainer(cfg, resume=resume, device=device, data_workers=workers, on_message=print)
        start_iter, start = trainer.iteration, time.monotonic()
        result = trainer.run(time_limit=max(1.0, seconds))
    except UserError as exc:
        print(f"gpu_session: {run.name} failed: {exc}")
        return {"run": run.name, "reason": f"failed: {exc}"}
    elapsed = time.monotonic() - start
    records = read_log(Path(cfg.out)) if (Path(cfg.out) / "log.jsonl").exists() else []
    val = [r for r in records if "psnr" in r]
    return {
        "run": run.name,
        "iterations": [start_iter, result.iteration, cfg.iters],
        "seconds": elapsed,
        "it_s": (result.iteration - start_iter) / elapsed if elapsed > 0 else None,
        "reason": result.reason,
        "last_validation": val[-1] if val else None,
        "warning": result.warning,
        "log": records,  # the whole log: a later window restores it beside the checkpoint
    }


def main() -> None:
    try:
        session()
    except UserError as exc:  # one line, as every command of the project answers bad input
        raise SystemExit(f"gpu_session: {exc}") from None


def check_args(args: argparse.Namespace) -> None:
    """What is wrong with the command line, before a minute of the window is spent."""
    if args.out.exists() and not args.out.is_dir():
        raise UserError("is a file; name a folder for the report and the checkpoint parts", args.out)
    if not args.data.is_dir():
        raise UserError("--data: no such folder (make it with benchmarks/make_data_pack.py)", args.data)
    if not find_images(args.data):
        raise UserError("--data: the folder holds no images", args.data)
    if args.resume is not None and not (args.resume / "session-report.json").is_file():
        raise UserError("--resume: no session-report.json there (the OUT of an earlier window)", args.resume)
    if not args.minutes > 0:
        raise UserError(f"--minutes must be above 0, got {args.minutes:g}")


def session() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for the report and the checkpoint parts")
    ap.add_argument("--minutes", type=float, default=12.0, help="the whole session's budget, checks included")
    ap.add_argument("--data", type=Path, default=ROOT / "data-pack", help="HR training images (the data pack)")
    ap.add_argument("--val", type=Path, default=None, help="validation set (Set5), when it travels")
    ap.add_argument("--resume", type=Path, default=None, help="a previous session's OUT: continue its runs")
    ap.add_argument("--work", type=Path, default=Path("/tmp/repsr-gpu-session"), help="run folders")
    ap.add_argument("--no-check", action="store_true", help="skip gpu_check (train only)")
    ap.add_argument("--dry-run", action="store_true", help="the same path on the CPU: tiny preset, a few steps")
    args = ap.parse_args()
    deadline = time.monotonic() + 60 * args.minutes
    cuda = torch.cuda.is_available()
    if not cuda and not args.dry_run:
        print("gpu_session: no CUDA device here; nothing to do (--dry-run runs the same path on the CPU)")
        return
    check_args(args)
    args.out.mkdir(parents=True, exist_ok=True)
    report: dict = {"machine": machine_name(torch.device("cuda" if cuda else "cpu")), "runs": []}
    if cuda and not args.no_check:
        check = subprocess.run([sys.executable, str(ROOT / "benchmarks" / "gpu_check.py"), str(args.out)])
        report["gpu_check"] = "ok" if check.returncode == 0 else f"exit {check.returncode}"
    workers = max(1, (torch.multiprocessing.cpu_count() or 2) - 1)
    device = "cuda" if cuda else "cpu"
    if args.resume is not None:
        restore(args.resume, args.work)
    pending = list(RUNS)
    while pending:
        run = pending.pop(0)
        cfg = config(run, args.work, args.data, args.val, args.dry_run)
        left = deadline - time.monotonic() - SAVE_MARGIN
        if left <= 0:
            report["runs"].append({"run": run.name, "reason": "no time left"})
            continue
        report["runs"].append(train(run, cfg, left / (len(pending) + 1), workers, device))
    for run in RUNS:
        last = args.work / run.name / "checkpoints" / "last.pth"
        if last.exists():
            report.setdefault("parts", {})[run.name] = split(last, args.out)
    (args.out / "session-report.json").write_text(json.dumps(report, indent=1, default=str))
    (args.out / "session-report.md").write_text(markdown(report))
    print(f"wrote {args.out / 'session-report.md'}")


def markdown(report: dict) -> str:
    lines = [f"# GPU session on {report['machine']}", "", "| run | iterations (start, end, planned) | it/s | stop |"]
    lines.append("|---|---|---|---|")
    for r in report["runs"]:
        its = ", ".join(f"{i:,}" for i in r.get("iterations", []))
        rate = f"{r['it_s']:.2f}" if r.get("it_s") else "-"
        lines.append(f"| {r['run']} | {its} | {rate} | {r.get('reason', '')} |")
    if "gpu_check" in report:
        lines += ["", f"gpu_check: {report['gpu_check']} (gpu-report.md beside this file)"]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()
