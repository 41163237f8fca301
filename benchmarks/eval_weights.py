"""Score every bundled model on Set5, Set14 and B100 next to bicubic and published reference rows.

Writes weights/scores.md (the model card's table). Needs ../shared/data/benchmark.
Run: python benchmarks/eval_weights.py
"""

from __future__ import annotations

import argparse
from pathlib import Path

from repsr_cli import evaluate
from repsr_cli.weights import available_models, load_model

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "data" / "benchmark"
SETS = ("Set5", "Set14", "B100")
# x4 PSNR reference rows, as listed in ../shared/data/README.md (sources named there).
REFERENCE_X4 = {
    "FSRCNN": (30.71, 27.59, 26.98),
    "ECBSR-M4C16": (30.87, 27.80, 27.06),
    "ECBSR-M6C40": (31.41, 28.20, 27.33),
    "ECBSR-M10C32": (31.66, 28.15, 27.34),
}


def row(name: str, upscale, scale: int) -> str:
    cells = []
    for s in SETS:
        result = evaluate.evaluate(upscale, evaluate.load_benchmark(BENCH / s, scale), scale)
        cells.append(f"{result.psnr:.2f} / {result.ssim:.4f}")
    return f"| {name} | x{scale} | " + " | ".join(cells) + " |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "weights" / "scores.md")
    args = ap.parse_args()
    bundled = [e for e in available_models() if e.source == "bundled"]
    for entry in bundled:  # an editable install may point at another checkout: say which files are scored
        print(f"scoring {entry.name}: {entry.path}")
    models = [(e.name, load_model(e.path)) for e in bundled]
    lines = [
        "# Scores of the bundled models",
        "",
        "PSNR (dB) / SSIM on the Y channel, standard protocol (MATLAB bicubic LR, `scale` pixels cropped).",
        "Produced by `python benchmarks/eval_weights.py`.",
        "",
        "| model | scale | " + " | ".join(SETS) + " |",
        "|---|---|" + "---|" * len(SETS),
    ]
    for scale in sorted({net.cfg.scale for _, net in models}):
        lines.append(row("bicubic", evaluate.bicubic(scale), scale))
        for name, net in models:
            if net.cfg.scale == scale:
                lines.append(row(f"**{name}**", evaluate.network(net), scale))
                print(lines[-1], flush=True)
        if scale == 4:
            lines += [
                f"| {n} (published, PSNR only) | x4 | " + " | ".join(f"{v:.2f}" for v in vals) + " |"
                for n, vals in REFERENCE_X4.items()
            ]
    args.out.write_text("\n".join(lines) + "\n")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
