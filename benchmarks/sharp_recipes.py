"""The short recipe search behind `--loss sharp`: candidate recipes fine-tuned briefly from repsr-real-x4, scored.

Each candidate trains --iters iterations at x4 from the real model's checkpoint at the sharp run's peak
learning rate (1e-4, constant: the search looks at the early, high-lr stretch where artefacts appear first;
real degradations), in-process with its recipe registered under its own name; then its
fused EMA network is scored on Set14 after JPEG 50 (Y-PSNR, edge energy relative to HR, phase-grid score).
`--only NAME...` trains candidates (two calls side by side use both cores); a call without it scores every
trained candidate into history/sharp-search/.

Run: OMP_NUM_THREADS=1 python benchmarks/sharp_recipes.py --iters 400 [--bn-switch 0] [--only NAME ...]
(--bn-switch 0.8 repeats the search with a batch phase first, as a run from scratch would have.)
"""

from __future__ import annotations

import argparse
import dataclasses
import json
from pathlib import Path

import torch

from repsr_cli.formats.checkpoint import load_checkpoint
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
}


def train(name: str, out: Path, iters: int, bn_switch: float) -> Path:
    last = out / "checkpoints" / "last.pth"
    if last.exists() and load_checkpoint(last)["iter"] >= iters:
        return last  # trained already: only to be scored
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
    Trainer(cfg, resume=last.exists(), data_workers=1, on_message=print).run()
    return last


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--iters", type=int, default=400)
    ap.add_argument("--bn-switch", type=float, default=0.0, help="0: population statistics throughout")
    ap.add_argument("--only", nargs="*", choices=list(CANDIDATES), help="train these candidates only")
    ap.add_argument("--runs", type=Path, help="run folders (default: runs/sharp-search-bnB)")
    args = ap.parse_args()
    torch.set_num_threads(1)
    args.runs = args.runs or ROOT / "runs" / f"sharp-search-bn{args.bn_switch:g}"
    if args.only:  # train (or finish) these; a call without --only scores what is trained
        for name in args.only:
            train(name, args.runs / name, args.iters, args.bn_switch)
        return
    names = [n for n in CANDIDATES if (args.runs / n / "checkpoints" / "last.pth").exists()]
    missing = sorted(set(CANDIDATES) - set(names))
    if missing:
        print(f"not trained, left out: {', '.join(missing)} (train them with --only)")
    from sharp_report import score_models  # benchmarks/sharp_report.py: the one scoring loop

    models = {name: args.runs / name / "checkpoints" / "last.pth" for name in names}
    rows = score_models(models, "Set14", scale=4, degradation="jpeg:50")
    out = ROOT / "history" / "sharp-search" / f"x4-{args.iters}-bn{args.bn_switch:g}.json"
    out.parent.mkdir(parents=True, exist_ok=True)
    recipes_used = {n: dataclasses.asdict(CANDIDATES[n]) for n in names}
    record = {"iters": args.iters, "bn_switch": args.bn_switch, "recipes": recipes_used, "scores": rows}
    out.write_text(json.dumps(record, indent=2))
    print(f"wrote {out}")


if __name__ == "__main__":
    main()
