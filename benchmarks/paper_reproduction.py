"""Test the RepSR paper's claims with our code, at equal budget. Writes docs/paper-reproduction.md.

Every variant trains with the same data, seed, iterations, schedule and BN-switch point (x4, tiny preset by
default); blocks that carry BatchNorm (repsr, acb, repvgg, dbb) use the same BN policy (`--bn switch`),
so the only difference is the block. The fused networks are then evaluated on Set5, Set14 and B100.

Run: python benchmarks/paper_reproduction.py [--iters 1500] [--preset tiny] [--runs runs/paper]
Interrupted runs resume; finished runs are reused.
"""

from __future__ import annotations

import argparse
import json
import time
from pathlib import Path

import numpy as np
import torch
from PIL import Image

from repsr_cli import evaluate
from repsr_cli.bench import deploy_flops, machine_name
from repsr_cli.formats.checkpoint import load_checkpoint, model_from_checkpoint
from repsr_cli.model import fuse
from repsr_cli.train.config import TrainConfig
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


def train_variant(name: str, block: str, bn: str, args: argparse.Namespace) -> Path:
    out = args.runs / slug(name)
    cfg = TrainConfig(
        data=str(DATA / "train"),
        out=str(out),
        scale=4,
        preset=args.preset,
        block=block,
        bn=bn,
        iters=args.iters,
        batch=16,
        patch=32,
        seed=0,
        max_hr_side=2048,
        val=str(DATA / "benchmark" / "Set5"),
        val_every=max(1, args.iters // 6),
        ckpt_every=250,
        log_every=50,
        bn_batches=50,
    )
    last = out / "checkpoints" / "last.pth"
    if last.exists() and load_checkpoint(last)["iter"] >= args.iters:
        return last
    print(f"training {name}", flush=True)
    Trainer(cfg, resume=last.exists(), on_message=lambda m: print(f"  {m}", flush=True)).run()
    return last


def params(module: torch.nn.Module) -> int:
    return sum(p.numel() for p in module.parameters())


def evaluate_variant(ckpt: Path) -> dict[str, object]:
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
    log = [json.loads(x) for x in (ckpt.parent.parent / "log.jsonl").read_text().splitlines()]
    rates = [r["it_s"] for r in log if r.get("it_s")]
    row["s_per_iter"] = 1 / float(np.median(rates))
    row["curve"] = [(r["iter"], r["psnr"]) for r in log if "psnr" in r]
    return row


def plot_curves(rows: dict[str, dict], path: Path) -> None:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8, 4.5))
    for name, row in rows.items():
        its, psnr = zip(*row["curve"], strict=True)
        ax.plot(its, psnr, "o-", ms=3, label=name)
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


UNRESOLVED_DB = 0.1  # one seed per variant and seed-to-seed spread unmeasured: smaller gaps settle nothing


def compare(gap: float, claim: str) -> str:
    if abs(gap) < UNRESOLVED_DB:
        return f"{gap:+.2f} dB: below {UNRESOLVED_DB} dB, unresolved at this budget ({claim})"
    return f"{gap:+.2f} dB: {'agrees with' if gap > 0 else 'contradicts'} {claim}"


def verdicts(rows: dict[str, dict]) -> list[str]:
    def mean_psnr(name: str) -> float:
        return float(np.mean([rows[name][s][0] for s in SETS]))

    switch, batch, none = (mean_psnr(n) for n in ("repsr (BN switch)", "repsr (BN batch only)", "repsr (no BN)"))
    out = [
        "Gaps are mean PSNR over Set5, Set14 and B100.",
        "",
        "- BN switch vs BN with mini-batch statistics only: "
        + compare(switch - batch, "claim (1), that the switch fixes the batch-only degradation")
        + ".",
        "- BN switch vs the same block without BN: "
        + compare(switch - none, "claim (1), that BN brings useful training non-linearity")
        + ".",
    ]
    for other in (n for n in rows if not n.startswith("repsr")):
        out.append(
            f"- RepSR (BN switch) vs {other}: "
            + compare(switch - mean_psnr(other), "claim (2), that the RepSR block beats it")
            + "."
        )
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=1500)
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--runs", type=Path, default=ROOT / "runs" / "paper")
    ap.add_argument("--only", nargs="*", help="only train these variant slugs, write no report (to train in parallel)")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "paper-reproduction.md")
    args = ap.parse_args()
    start = time.time()
    ckpts = {}
    for name, block, bn in VARIANTS:
        if args.only and slug(name) not in args.only:
            ckpts[name] = args.runs / slug(name) / "checkpoints" / "last.pth"
            continue
        ckpts[name] = train_variant(name, block, bn, args)
    if args.only:
        return  # a helper process training some variants in parallel; the full run writes the report
    rows = {name: evaluate_variant(c) for name, c in ckpts.items() if c.exists()}
    img_dir = args.out.parent / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    plot_curves(rows, img_dir / "paper-curves.png")
    crop_note = artifact_crops(
        ckpts["repsr (BN batch only)"], ckpts["repsr (BN switch)"], img_dir / "bn-batch-vs-switch.png"
    )
    table = [
        "| variant | train params | deploy params | deploy GFLOPs (320x180 in) | s / iter | "
        + " | ".join(f"{s} PSNR / SSIM" for s in SETS)
        + " |",
        "|---|---|---|---|---|" + "---|" * len(SETS),
    ]
    for name, r in rows.items():
        cells = " | ".join(f"{r[s][0]:.2f} / {r[s][1]:.4f}" for s in SETS)
        table.append(
            f"| {name} | {r['train_params']:,} | {r['deploy_params']:,} | {r['deploy_gflops_720p']:.2f} | "
            f"{r['s_per_iter']:.3f} | {cells} |"
        )
    text = [
        "# The paper's claims, tested",
        "",
        f"Produced by `python benchmarks/paper_reproduction.py --iters {args.iters} --preset {args.preset}` on "
        f"{machine_name(torch.device('cpu'))}, in {(time.time() - start) / 60:.0f} min of this invocation "
        "(finished runs are reused).",
        "",
        f"Setup: x4, `{args.preset}` preset, {args.iters} iterations, batch 16, LR patch 32, Adam, cosine lr 5e-4, "
        "BN switch at 80 % where it applies, seed 0, training data `../shared/data/train` (photos shrunk to "
        "<= 2048 px). Evaluation: fused networks, Y-channel PSNR/SSIM, standard protocol. s / iter is the median "
        "training speed on this CPU (one thread while other work ran, so compare rows, not absolutes).",
        "",
        *table,
        "",
        "All variants fuse to the same plain network, so deploy parameters and FLOPs are equal by construction.",
        "",
        "## Verdicts (computed from the table)",
        "",
        *verdicts(rows),
        "",
        "![validation curves](img/paper-curves.png)",
        "",
        "## BN artifacts: mini-batch statistics only vs the switch",
        "",
        f"HR | BN batch only | BN switch. {crop_note}.",
        "",
        "![crops](img/bn-batch-vs-switch.png)",
        "",
        "## Caveats",
        "",
        f"- {args.iters} iterations is a short budget (the paper trains for hundreds of thousands of iterations);"
        " rankings of blocks can change with longer training.",
        f"- One seed per variant; seed-to-seed spread was not measured, hence the {UNRESOLVED_DB} dB threshold.",
        "",
    ]
    args.out.write_text("\n".join(text))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
