"""The short recipe search behind `--loss sharp`: candidate recipes fine-tuned briefly from repsr-real-x4, scored.

Each candidate trains --iters iterations at x4 from the real model's checkpoint at the sharp run's peak
learning rate (1e-4, constant: the search looks at the early, high-lr stretch where artefacts appear first;
real degradations), in-process with its recipe registered under its own name; then its
fused EMA network is scored on Set14 after JPEG 50 (Y-PSNR, edge energy relative to HR, phase-grid score).
`--only NAME...` trains candidates (two calls side by side use both cores); a call without it scores every
trained candidate into history/sharp-search/.

Run: OMP_NUM_THREADS=1 python benchmarks/sharp_recipes.py --iters 400 [--bn-switch 0] [--only NAME ...]
     [--at 1000 1500 2000]   (keeps and scores the checkpoints at those iterations: where along a run a
     recipe meets the targets; the repsr-real-x4 row is the reference)
(--bn-switch 0.8 repeats the search with a batch phase first, as a run from scratch would have.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
import shutil
from pathlib import Path

import torch

from repsr_cli.train import recipes
from repsr_cli.train.config import TrainConfig
from repsr_cli.train.trainer import Trainer

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
# The first candidate's weights (an FFT-amplitude term, a weak GAN); each other row changes one thing.
FIRST = recipes.Recipe(fft_weight=0.05, grid_weight=1.0, gan="vanilla", gan_weight=0.02, ldl_weight=1.0, ema=0.999)
CANDIDATES: dict[str, recipes.Recipe] = {
    "fft-gan0.02": FIRST,
    "gan0.02": dataclasses.replace(FIRST, fft_weight=0.0),
    "fft-gan0.05": dataclasses.replace(FIRST, gan_weight=0.05),
    "pixel-only": recipes.Recipe(ema=FIRST.ema),  # the same fine-tune without the GAN: what the set-up alone does
    "shipped": recipes.RECIPES["sharp"],
    # The shipped recipe's edges came only with ringing (docs/sharp.md): a perceptual term without downloaded
    # weights (train/features.py) ties invented detail to the target's structure, alone and under a stronger GAN.
    "feature1": dataclasses.replace(recipes.RECIPES["sharp"], feature_weight=1.0),
    "feature1-gan0.1": dataclasses.replace(recipes.RECIPES["sharp"], feature_weight=1.0, gan_weight=0.1),
}


def kept(out: Path, at: int) -> Path:
    return out / "checkpoints" / f"at-{at}.pth"


def train(name: str, out: Path, iters: int, bn_switch: float, at: list[int]) -> None:
    """Train to each iteration of `at` in turn, keeping a copy of the checkpoint there to be scored."""
    last = out / "checkpoints" / "last.pth"
    for stop in at:
        if kept(out, stop).exists():
            continue  # trained already: only to be scored
        _trainer(name, out, iters, bn_switch, resume=last.exists()).run(stop_at=stop)
        shutil.copyfile(last, kept(out, stop))


def _trainer(name: str, out: Path, iters: int, bn_switch: float, resume: bool) -> Trainer:
    recipes.RECIPES[f"search-{name}"] = CANDIDATES[name]
    cfg = TrainConfig(
        data=str(DATA / "train"),
        out=str(out),
        scale=4,
        preset="small",
        iters=iters,
        batch=16,
        patch=32,
        lr=1e-4,
        schedule="multistep",
        milestones=[],
        warmup=min(100, iters // 10),
        bn_switch=bn_switch,
        seed=21,
        max_hr_side=2048,
        val_every=0,
        ckpt_every=100,
        init_from=str(ROOT / "history" / "real-x4" / "checkpoints" / "last.pth"),
        loss=f"search-{name}",
        degradation="real",
        precision="auto",
    )
    return Trainer(cfg, resume=resume, data_workers=1, on_message=print)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--bn-switch", type=float, default=0.0, help="0: population statistics throughout")
    ap.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="train these candidates only")
    ap.add_argument("--at", type=int, nargs="*", help="iterations to keep and score along the way (default: --iters)")
    ap.add_argument("--runs", type=Path, help="run folders (default: runs/sharp-search-bnB)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    at = sorted(args.at or [args.iters])
    args.runs = args.runs or ROOT / "runs" / f"sharp-search-bn{args.bn_switch:g}"
    if args.only:  # train (or finish) these; a call without --only scores what is trained
        for name in args.only:
            train(name, args.runs / name, args.iters, args.bn_switch, at)
        return
    models = {
        name if at == [args.iters] else f"{name}@{stop}": kept(args.runs / name, stop)
        for name in CANDIDATES
        for stop in at
        if kept(args.runs / name, stop).exists()
    }
    names = sorted({str(key).split("@")[0] for key in models})
    missing = sorted(set(CANDIDATES) - set(names))
    if missing:
        print(f"not trained, left out: {', '.join(missing)} (train them with --only)")
    from sharp_report import score_models  # benchmarks/sharp_report.py: the one scoring loop

    rows = score_models({"repsr-real-x4": "repsr-real-x4", **models}, "Set14", scale=4, degradation="jpeg:50")
    suffix = "" if at == [args.iters] else "-at"
    out = ROOT / "history" / "sharp-search" / f"x4-{args.iters}-bn{args.bn_switch:g}{suffix}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    recipes_used = {n: dataclasses.asdict(CANDIDATES[n]) for n in names}
    record = {"iters": args.iters, "at": at, "bn_switch": args.bn_switch, "recipes": recipes_used, "scores": rows}
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
