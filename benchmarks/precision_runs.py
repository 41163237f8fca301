"""Does bf16 training cost quality? The tiny preset trained in fp32 and in bf16 autocast, two seeds each, to the
same iteration, then scored on Set5 (x4, Y-PSNR, the standard protocol) and timed.

bf16 passes where its runs land within the spread the seed alone makes in fp32 (issue 42: the speed of bf16 is
worth having only if its models are as good). Each run is an ordinary `repsr train` run folder under
runs/precision/, resumable: `--only NAME` trains one (two calls side by side use both cores, one thread each),
a call without it scores what is trained and writes its section of docs/training-speed.md.

Run: OMP_NUM_THREADS=1 python benchmarks/precision_runs.py --only fp32-s1   (and fp32-s2, bf16-s1, bf16-s2)
     python benchmarks/precision_runs.py   (the table, once all four are trained)
"""

from __future__ import annotations

import argparse
import json
import statistics
from pathlib import Path

import torch
from pages import write_section

from repsr_cli.deploy.weights import load_model
from repsr_cli.measure import evaluate
from repsr_cli.measure.speed import machine_name
from repsr_cli.train.config import TrainConfig
from repsr_cli.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
RUNS = ROOT / "runs" / "precision"
PAGE = ROOT / "docs" / "training-speed.md"
PRECISIONS, SEEDS = ("fp32", "bf16"), (1, 2)


def run_name(precision: str, seed: int) -> str:
    return f"{precision}-s{seed}"


def config(precision: str, seed: int, iters: int) -> TrainConfig:
    """The tiny preset's defaults (patch 48, batch 16, cosine lr, BN switch at 0.8) on the shared training set."""
    return TrainConfig(
        data=str(DATA / "train"),
        out=str(RUNS / run_name(precision, seed)),
        preset="tiny",
        scale=4,
        iters=iters,
        seed=seed,
        max_hr_side=1024,
        val=str(DATA / "benchmark" / "Set5"),
        val_every=iters,  # scored once, at the end, like the table
        ckpt_every=500,
        precision=precision,
    )


def train(precision: str, seed: int, iters: int) -> None:
    cfg = config(precision, seed, iters)
    resume = (Path(cfg.out) / "checkpoints" / "last.pth").exists()
    Trainer(cfg, resume=resume, on_message=print).run()


def scored(precision: str, seed: int) -> dict[str, float] | None:
    """Set5 Y-PSNR of the run's last checkpoint (fused, fp32 forward) and its median training rate."""
    folder = RUNS / run_name(precision, seed)
    last = folder / "checkpoints" / "last.pth"
    if not last.exists():
        return None
    log = [json.loads(line) for line in (folder / "log.jsonl").read_text().splitlines() if line.strip()]
    rates = [row["it_s"] for row in log if "it_s" in row]
    net = load_model(last)
    pairs = evaluate.load_benchmark(DATA / "benchmark" / "Set5", 4)
    psnr = evaluate.evaluate(evaluate.network(net), pairs, 4).psnr
    return {"iter": max(row.get("iter", 0) for row in log), "psnr": psnr, "it_s": statistics.median(rates)}


def section(results: dict[tuple[str, int], dict[str, float]], iters: int) -> str:
    rows = [f"| {p} | {s} | {r['iter']} | {r['psnr']:.3f} | {r['it_s']:.2f} |" for (p, s), r in sorted(results.items())]
    psnr = {p: [results[p, s]["psnr"] for s in SEEDS if (p, s) in results] for p in PRECISIONS}
    lines = [
        f"Machine: {machine_name(torch.device('cpu'))} (one thread per run). Tiny preset, x4, the trainer's defaults"
        f" (patch 48, batch 16, cosine lr 5e-4, BN switch at 0.8), {iters} iterations on ../shared/data/train;"
        " Set5 Y-PSNR of the final checkpoint, fused and run in fp32; the run's median iterations/s (the runs ran"
        " two at a time beside other work, so compare speeds in the tables above, not here).",
        "",
        "| precision | seed | iterations | Set5 Y-PSNR dB | it/s |",
        "|---|---|---|---|---|",
        *rows,
        "",
    ]
    if all(len(psnr[p]) == len(SEEDS) for p in PRECISIONS):
        lo, hi = min(psnr["fp32"]), max(psnr["fp32"])
        where = ["below" if v < lo else "above" if v > hi else "within" for v in psnr["bf16"]]
        gap = statistics.mean(psnr["bf16"]) - statistics.mean(psnr["fp32"])
        lines += [
            f"fp32's seeds span {lo:.3f} to {hi:.3f} dB ({hi - lo:.3f} dB); bf16 lands at "
            + ", ".join(f"{v:.3f} dB ({w})" for v, w in zip(psnr["bf16"], where, strict=True))
            + f", mean {gap:+.3f} dB against fp32's: "
            + ("no bf16 run below fp32's seed spread." if "below" not in where else "bf16 below fp32's seed spread."),
            "",
        ]
    else:
        lines += ["Not all four runs are trained yet.", ""]
    lines.append("Reproduce: the Run lines of `benchmarks/precision_runs.py`.")
    return "\n".join(lines)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=8000)
    names = [run_name(p, s) for p in PRECISIONS for s in SEEDS]
    ap.add_argument("--only", choices=names, help="train (or finish) this run")
    args = ap.parse_args()
    torch.set_num_threads(1)
    if args.only:
        precision, seed = args.only.split("-s")
        train(precision, int(seed), args.iters)
        return
    results = {(p, s): r for p in PRECISIONS for s in SEEDS if (r := scored(p, s)) is not None}
    text = section(results, args.iters)
    print(text)
    write_section(PAGE, "precision runs", text, "## bf16 against fp32: the models", "(`precision_runs.py`.)")


if __name__ == "__main__":
    main()
