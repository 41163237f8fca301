"""Test the RepSR paper's claims with our code, at equal budget and over several seeds.

Every variant trains with the same data, iterations, schedule and BN-switch point (x4, tiny model by default)
once per seed; blocks that carry BatchNorm (repsr, acb, repvgg, dbb) use the same BN policy (`--bn switch`),
so the only difference is the block. The fused networks are evaluated on Set5, Set14 and B100; each finished
run's config, log and scores are kept in experiments/paper/BUDGET/RUN (not its checkpoint), so the report can be
rebuilt without retraining. A verdict is given only where the gap between two variants' means exceeds twice
the larger of their standard deviations over seeds; otherwise it is "unresolved", with the gap.

Run: python benchmarks/paper_reproduction.py [--iters 8000] [--size tiny] [--seeds 0 1 2]
     [--variants repsr-BN-switch ecb plain] [--time-limit SECONDS] [--only RUN ...] [--park]
Interrupted runs resume (checkpoints under --runs); finished runs are reused; --time-limit stops cleanly and
the next invocation continues. With --park a run the time limit stops is also copied (config, log, last
checkpoint) to experiments/paper/BUDGET/RUN/parked, to be committed when a session ends midway; a machine without
the run folder resumes from there, and the parked copy is removed once the run is finished and scored.
--only trains just the named runs (SLUG-sSEED) and writes no report, so two processes can train side by
side. The report is this budget's section of docs/paper-reproduction.md, replaced
in place, and the head's table of every budget kept in the history (between its markers); the rest of the
head and other budgets' sections are kept.
"""

from __future__ import annotations

import argparse
import json
import shutil
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repsr_cli.formats.checkpoint import load_checkpoint, model_from_checkpoint
from repsr_cli.measure import evaluate
from repsr_cli.measure.speed import deploy_flops, machine_name
from repsr_cli.model import fuse
from repsr_cli.train.config import TrainConfig
from repsr_cli.train.runlog import median_rate, parse_log
from repsr_cli.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
VARIANTS = [  # name, block, bn policy
    ("repsr (BN switch)", "repsr", "switch"),
    ("repsr (BN batch only)", "repsr", "batch"),
    ("repsr (no BN)", "repsr", "none"),
    ("ecb", "ecb", "switch"),
    ("acb", "acb", "switch"),
    ("repvgg", "repvgg", "switch"),
    ("dbb", "dbb", "switch"),
    ("plain", "plain", "switch"),
]
SETS = ("Set5", "Set14", "B100")


def slug(name: str) -> str:
    return "".join(c if c.isalnum() else "-" for c in name).strip("-").replace("--", "-")


def budget(args: argparse.Namespace) -> str:
    return f"{args.size}-x4-{args.iters}"


def run_name(name: str, seed: int) -> str:
    return f"{slug(name)}-s{seed}"


def train_variant(name: str, block: str, bn: str, seed: int, args: argparse.Namespace) -> Path | None:
    """The run's last checkpoint once it has finished; None when the time limit stopped it first."""
    out = args.runs / budget(args) / run_name(name, seed)
    cfg = TrainConfig(
        data=str(DATA / "train"),
        out=str(out),
        scale=4,
        size=args.size,
        block=block,
        bn=bn,
        iters=args.iters,
        batch=16,
        patch=32,
        seed=seed,
        max_hr_side=2048,
        val=str(DATA / "benchmark" / "Set5"),
        val_every=max(1, args.iters // 6),
        ckpt_every=250,
        log_every=50,
        bn_batches=50,
        precision="fp32",  # the same arithmetic on every machine: seeds may train on different CPUs
    )
    last = out / "checkpoints" / "last.pth"
    if not out.exists() and parked(name, seed, args).exists():  # stopped midway on another machine
        shutil.copytree(parked(name, seed, args), out)
    if last.exists() and load_checkpoint(last)["iter"] >= args.iters:
        return last
    left = None if args.deadline is None else args.deadline - time.monotonic()
    if left is not None and left <= 0:
        return None
    print(f"training {run_name(name, seed)}", flush=True)
    trainer = Trainer(cfg, resume=last.exists(), on_message=lambda m: print(f"  {m}", flush=True))
    if trainer.run(time_limit=left).finished:
        return last
    if args.park:
        park(out, parked(name, seed, args))
    return None


def parked(name: str, seed: int, args: argparse.Namespace) -> Path:
    """Where an unfinished run's folder is kept in git when a session ends midway (the one checkpoint kept)."""
    return kept(name, seed, args) / "parked"


def park(out: Path, to: Path) -> None:
    """The run folder's config, log and last checkpoint: what resume needs, and nothing else."""
    (to / "checkpoints").mkdir(parents=True, exist_ok=True)
    for part in ("config.json", "log.jsonl", "checkpoints/last.pth"):
        shutil.copy2(out / part, to / part)
    print(f"  parked in {shown(to)}: commit it to resume elsewhere", flush=True)


def shown(path: Path) -> str:
    """A path as the report names it: relative to the repository where it lies inside."""
    return str(path.relative_to(ROOT)) if path.is_relative_to(ROOT) else str(path)


def kept(name: str, seed: int, args: argparse.Namespace) -> Path:
    return args.history / budget(args) / run_name(name, seed)


def keep_run(name: str, seed: int, ckpt: Path, args: argparse.Namespace) -> dict[str, object]:
    """Score a finished run and keep its config, log and scores in the history folder."""
    folder = kept(name, seed, args)
    folder.mkdir(parents=True, exist_ok=True)
    for part in ("config.json", "log.jsonl"):
        shutil.copy2(ckpt.parent.parent / part, folder / part)
    row = evaluate_variant(ckpt)
    (folder / "result.json").write_text(json.dumps(row, indent=1))
    shutil.rmtree(folder / "parked", ignore_errors=True)  # finished: its checkpoint leaves the history
    return row


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def evaluate_variant(ckpt: Path) -> dict[str, object]:
    """Parameters, FLOPs, speed, scores and the validation curve of a finished run."""
    net = model_from_checkpoint(load_checkpoint(ckpt), ckpt).eval()
    deploy = fuse(net)
    row: dict[str, object] = {
        "train_params": params(net),
        "deploy_params": params(deploy),
        "deploy_gflops_720p": deploy_flops(deploy, 180, 320) / 1e9,
    }
    for name in SETS:
        result = evaluate.evaluate(evaluate.network(deploy), evaluate.load_benchmark(DATA / "benchmark" / name, 4), 4)
        row[name] = (result.psnr, result.ssim)
    log = parse_log(ckpt.parent.parent / "log.jsonl")
    row["s_per_iter"] = 1 / median_rate(log)
    row["curve"] = [(r["iter"], r["psnr"]) for r in log if "psnr" in r]
    return row


def plot_curves(rows: dict[str, list[dict]], path: Path) -> None:
    """Validation curves of every run, one colour per variant (one line per seed)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for k, (name, seeds) in enumerate(rows.items()):
        for i, row in enumerate(seeds):
            its, psnr = zip(*row["curve"], strict=True)
            ax.plot(its, psnr, "o-", ms=2, lw=1, color=f"C{k}", label=name if i == 0 else None)
    ax.set_xlabel("iteration")
    ax.set_ylabel("Set5 PSNR (dB, Y), fused network")
    ax.legend(fontsize=8)
    ax.grid(alpha=0.3)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)


def artifact_crops(ckpt_batch: Path, ckpt_switch: Path, path: Path, size: int = 48) -> str:
    """Side by side: HR, BN-batch-only output, BN-switch output, on the crop where the two differ most."""
    nets = [fuse(model_from_checkpoint(load_checkpoint(c), c).eval()) for c in (ckpt_batch, ckpt_switch)]
    best = None
    for name in ("Set14", "B100"):
        for pair in evaluate.load_benchmark(DATA / "benchmark" / name, 4):
            outs = [evaluate.network(n)(pair.lr) for n in nets]
            diff = np.abs(outs[0].astype(float) - outs[1].astype(float)).mean(axis=2)
            h, w = diff.shape
            for y in range(0, h - size, size // 2):
                for x in range(0, w - size, size // 2):
                    score = diff[y : y + size, x : x + size].mean()
                    if best is None or score > best[0]:
                        best = (score, pair, outs, y, x, f"{name}/{pair.name}")
    score, pair, outs, y, x, label = best
    tiles = [img[y : y + size, x : x + size] for img in (pair.hr, *outs)]
    strip = np.concatenate([np.pad(t, ((2, 2), (2, 2), (0, 0)), constant_values=255) for t in tiles], axis=1)
    Image.fromarray(strip).resize((strip.shape[1] * 4, strip.shape[0] * 4), Image.Resampling.NEAREST).save(path)
    return f"{label}, crop at ({x}, {y}), mean absolute difference between the two outputs {score:.1f} grey levels"


def seed_scores(seeds: list[dict]) -> np.ndarray:
    """Each seed's mean PSNR over the three sets."""
    return np.array([np.mean([row[s][0] for s in SETS]) for row in seeds])


def spread(values: np.ndarray) -> float:
    return float(np.std(values, ddof=1)) if len(values) > 1 else float("nan")


def judge(a: np.ndarray, b: np.ndarray) -> tuple[float, float | None, str]:
    """(gap between means, twice the larger standard deviation over seeds, verdict): "agrees" or "contradicts"
    only beyond that limit, else "unresolved" (always so with one seed, whose limit is None)."""
    gap = float(a.mean() - b.mean())
    if min(len(a), len(b)) < 2:
        return gap, None, "unresolved"
    limit = 2 * max(spread(a), spread(b))
    return gap, limit, "unresolved" if abs(gap) <= limit else ("agrees" if gap > 0 else "contradicts")


def compare(a: np.ndarray, b: np.ndarray, claim: str) -> str:
    gap, limit, verdict = judge(a, b)
    if limit is None:
        return f"{gap:+.3f} dB: unresolved, one seed cannot tell a gap from noise ({claim})"
    if verdict == "unresolved":
        return f"{gap:+.3f} dB: unresolved, within twice the seed spread ({limit:.3f} dB) ({claim})"
    return f"{gap:+.3f} dB, beyond twice the seed spread ({limit:.3f} dB): {WORDS[verdict]} {claim}"


WORDS = {"agrees": "agrees with", "contradicts": "contradicts"}
SWITCH = "repsr (BN switch)"
CLAIMS = {
    "repsr (BN batch only)": "claim (1), that the switch fixes the batch-only degradation",
    "repsr (no BN)": "claim (1), that BN brings useful training non-linearity",
}


def claim_of(other: str) -> str:
    return CLAIMS.get(other, "claim (2), that the RepSR block beats it")


def verdicts(rows: dict[str, list[dict]]) -> list[str]:
    scores = {name: seed_scores(seeds) for name, seeds in rows.items()}
    switch = scores.get(SWITCH)
    if switch is None:
        return ["No RepSR (BN switch) runs: nothing to compare with."]
    out = ["Gaps are between means over seeds of the mean PSNR over Set5, Set14 and B100.", ""]
    for other in (n for n in rows if n != SWITCH):
        out.append(f"- RepSR (BN switch) vs {other}: {compare(switch, scores[other], claim_of(other))}.")
    return out


def kept_budgets(history: Path) -> dict[str, dict[str, list[dict]]]:
    """Every budget in the history, smaller networks first, then shorter runs: variant -> the results of its
    finished seeds."""
    budgets = {}
    for folder in sorted(p for p in history.iterdir() if p.is_dir()):
        rows = {}
        for name, _, _ in VARIANTS:
            results = sorted(folder.glob(f"{slug(name)}-s*/result.json"))
            if results:
                rows[name] = [json.loads(r.read_text()) for r in results]
        if rows:
            budgets[folder.name] = rows
    size = {tag: next(iter(rows.values()))[0]["deploy_params"] for tag, rows in budgets.items()}
    return dict(sorted(budgets.items(), key=lambda b: (size[b[0]], int(b[0].rsplit("-", 1)[1]))))


def summary(budgets: dict[str, dict[str, list[dict]]]) -> list[str]:
    """One row per budget: RepSR (BN switch) against each other variant run there, gap and verdict."""
    others = [name for name, _, _ in VARIANTS if name != SWITCH and any(name in b for b in budgets.values())]
    lines = [
        "| size, iterations | seeds | " + " | ".join(f"vs {o}" for o in others) + " |",
        "|---|---|" + "---|" * len(others),
    ]
    for tag, rows in budgets.items():
        if SWITCH not in rows:
            continue
        size, _, iters = tag.split("-")
        switch = seed_scores(rows[SWITCH])
        cells = []
        for other in others:
            if other not in rows:
                cells.append("")
                continue
            gap, limit, verdict = judge(switch, seed_scores(rows[other]))
            noise = "one seed" if limit is None else f"noise {limit:.3f}"
            cells.append(f"{gap:+.3f} dB ({noise}): {verdict}")
        counts = sorted({len(seeds) for seeds in rows.values()})
        seeds = "-".join(map(str, counts))
        lines.append(f"| {size}, {int(iters):,} | {seeds} | " + " | ".join(cells) + " |")
    return lines


SUMMARY = ("<!-- summary: written by benchmarks/paper_reproduction.py -->", "<!-- /summary -->")


def write_summary(path: Path, history: Path) -> None:
    """Rewrite the head's table of every kept budget between its markers; the words around it stay as written."""
    text = path.read_text()
    if SUMMARY[0] not in text:
        return
    before, rest = text.split(SUMMARY[0], 1)
    after = rest.split(SUMMARY[1], 1)[1]
    table = "\n".join(summary(kept_budgets(history)))
    path.write_text(f"{before}{SUMMARY[0]}\n{table}\n{SUMMARY[1]}{after}")


def collect(args: argparse.Namespace) -> tuple[dict[str, list[dict]], dict[tuple[str, int], Path], bool]:
    """Train (or resume) every selected run, keep the finished ones; (rows per variant, the finished checkpoints
    still on disk by (variant, seed), whether everything has finished)."""
    rows: dict[str, list[dict]] = {}
    ckpts: dict[tuple[str, int], Path] = {}
    complete = True
    for name, block, bn in VARIANTS:
        if args.variants and slug(name) not in args.variants:
            continue
        for seed in args.seeds:
            if args.only and run_name(name, seed) not in args.only:
                continue
            result = kept(name, seed, args) / "result.json"
            ckpt = args.runs / budget(args) / run_name(name, seed) / "checkpoints" / "last.pth"
            if result.exists():  # scored before: no retraining (its checkpoint may be gone)
                rows.setdefault(name, []).append(json.loads(result.read_text()))
            else:
                ckpt = train_variant(name, block, bn, seed, args)
                if ckpt is None:
                    complete = False
                    continue
                rows.setdefault(name, []).append(keep_run(name, seed, ckpt, args))
            if ckpt.exists():
                ckpts[(name, seed)] = ckpt
    return rows, ckpts, complete


def section(
    rows: dict[str, list[dict]], ckpts: dict[tuple[str, int], Path], args: argparse.Namespace, minutes: float
) -> str:
    """This budget's part of the page: table, verdicts, curves and the BN-artifact crop."""
    img_dir = args.out.parent / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    tag = budget(args)
    plot_curves(rows, img_dir / f"paper-curves-{tag}.png")
    pair = ("repsr (BN batch only)", "repsr (BN switch)")
    # checkpoints are not kept in git: the crop uses the first seed whose two runs are still on disk, and is
    # kept (image in docs/img, its caption in history) for a rerun where none are
    seed = next((s for s in args.seeds if all((n, s) in ckpts for n in pair)), None)
    kept_crop = args.history / tag / "bn-crop.json"
    crop_note = None
    if seed is not None:
        crop_note = artifact_crops(
            ckpts[(pair[0], seed)], ckpts[(pair[1], seed)], img_dir / f"bn-batch-vs-switch-{tag}.png"
        )
        kept_crop.write_text(json.dumps({"seed": seed, "note": crop_note}))
    elif kept_crop.exists() and (img_dir / f"bn-batch-vs-switch-{tag}.png").exists():
        kept = json.loads(kept_crop.read_text())
        seed, crop_note = kept["seed"], kept["note"]
    table = [
        "| variant | seeds | train params | deploy GFLOPs (320x180 in) | s / iter | "
        + " | ".join(f"{s} PSNR" for s in SETS)
        + " | mean of the three |",
        "|---|---|---|---|---|" + "---|" * (len(SETS) + 1),
    ]
    for name, seeds in rows.items():
        per_set = [np.array([r[s][0] for r in seeds]) for s in SETS]
        overall = seed_scores(seeds)
        cells = " | ".join(f"{v.mean():.3f} ± {spread(v):.3f}" for v in (*per_set, overall))
        first = seeds[0]
        table.append(
            f"| {name} | {len(seeds)} | {first['train_params']:,} | {first['deploy_gflops_720p']:.2f} | "
            f"{np.mean([r['s_per_iter'] for r in seeds]):.3f} | {cells} |"
        )
    variants = " ".join(slug(n) for n in rows)
    text = [
        f"## {args.size}, {args.iters:,} iterations, {len(args.seeds)} seeds",
        "",
        f"Produced by `python benchmarks/paper_reproduction.py --iters {args.iters} --size {args.size} --seeds "
        f"{' '.join(map(str, args.seeds))} --variants {variants}` on {machine_name(torch.device('cpu'))}; this "
        f"invocation {minutes:.0f} min (finished runs are reused from {shown(args.history / tag)}, where each "
        "run's config, log and scores are kept).",
        "",
        f"Setup: x4, `{args.size}` model size, {args.iters} iterations, batch 16, LR patch 32, Adam, cosine lr 5e-4, "
        "fp32, BN switch at 80 % where it applies, training data `../shared/data/train` (photos shrunk to <= 2048 "
        "px). Evaluation: fused networks, Y-channel PSNR, standard protocol; mean ± standard deviation over seeds. "
        "s / iter is the median training speed at the thread count a run started with, one thread while "
        "another run trained beside it: compare rows, not absolutes.",
        "",
        *table,
        "",
        "Verdicts, computed from the table:",
        "",
        *verdicts(rows),
        "",
        f"![validation curves, {tag}](img/paper-curves-{tag}.png)",
    ]
    if crop_note:
        text += [
            "",
            f"BN artifacts: HR | BN batch only | BN switch (seed {seed}), on the crop where the two "
            f"differ most. {crop_note}.",
            "",
            f"![crops, {tag}](img/bn-batch-vs-switch-{tag}.png)",
        ]
    return "\n".join(text) + "\n"


MARK = "<!-- budget {} -->"


def write_page(path: Path, tag: str, body: str) -> None:
    """Replace this budget's section of the page in place (or add it), keeping the hand-written head and every
    other budget's section; sections stay ordered by iterations, longest first."""
    text = path.read_text() if path.exists() else ""
    head, *parts = text.split("<!-- budget ")
    sections = {p.split(" -->", 1)[0]: "<!-- budget " + p for p in parts}
    sections[tag] = MARK.format(tag) + "\n" + body.strip("\n") + "\n\n"
    order = sorted(sections, key=lambda t: -int(t.rsplit("-", 1)[1]))
    path.write_text((head + "".join(sections[t] for t in order)).rstrip("\n") + "\n")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--size", "--preset", default="tiny")
    ap.add_argument("--seeds", type=int, nargs="+", default=[0])
    ap.add_argument("--variants", nargs="*", help="variant slugs to run (default: all)")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "paper", help="checkpoints (not kept in git)")
    ap.add_argument("--history", type=Path, default=ROOT / "experiments" / "paper", help="configs, logs, scores kept")
    ap.add_argument("--only", nargs="*", help="train only these runs (SLUG-sSEED), write no report")
    ap.add_argument("--time-limit", type=float, default=None, help="seconds for this invocation's training")
    ap.add_argument("--park", action="store_true", help="keep a run the time limit stops in history/ (to commit)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "paper-reproduction.md")
    args = ap.parse_args()
    start = time.time()
    args.deadline = None if args.time_limit is None else time.monotonic() + args.time_limit
    rows, ckpts, complete = collect(args)
    if args.only or not complete:
        print("runs left to train: run again to continue" if not complete else "done; no report with --only")
        return
    write_page(args.out, budget(args), section(rows, ckpts, args, (time.time() - start) / 60))
    write_summary(args.out, args.history)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
