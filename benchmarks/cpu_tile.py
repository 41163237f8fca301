"""The CPU tile size: output MP/s of `Upscaler.upscale_array` per tile side, for each engine `auto` can pick
and each model size, on a qHD video frame (960x540).

A tile recomputes its receptive-field margin on every side (docs/performance.md, "What bounds each number"), so
larger tiles waste less; smaller ones keep activations in cache and memory flat. Which side wins differs by
engine and network width, so the default cap on a CPU (upscaler.CPU_TILE) is chosen from this table.

Run: python benchmarks/cpu_tile.py [--width 960 --height 540] [--tiles 0 512 384 256] [--rounds 3]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from pages import write_section

from repsr_cli.deploy.weights import load_model
from repsr_cli.infer.engines import candidates
from repsr_cli.measure.speed import machine_name, tile_cost

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
MODELS = ["repsr-tiny-x4", "repsr-real-x4", "repsr-real-base-x4"]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--width", type=int, default=960)
    ap.add_argument("--height", type=int, default=540)
    ap.add_argument("--tiles", type=int, nargs="+", default=[0, 512, 384, 256])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--no-page", action="store_true", help="print the table only")
    args = ap.parse_args()
    image = np.random.default_rng(0).integers(0, 256, (args.height, args.width, 3), dtype=np.uint8)
    labels = ["whole" if t == 0 else str(t) for t in args.tiles]
    rows = []
    for name in args.models:
        net = load_model(name)
        for engine, precision in candidates("cpu", "auto"):
            mps = tile_cost(net, image, args.tiles, args.rounds, engine=engine, precision=precision)
            best = max(mps, key=mps.__getitem__)
            cells = [f"**{mps[t]:.2f}**" if t == best else f"{mps[t]:.2f}" for t in args.tiles]
            rows.append(f"| {name} | {engine} {precision} | " + " | ".join(cells) + " |")
            print(rows[-1], flush=True)
    text = "\n".join(
        [
            f"Machine: {machine_name(torch.device('cpu'))}. Input {args.width}x{args.height} (random pixels), x4; "
            "output MP/s of the whole `upscale_array` path, tile sizes timed together per engine (one warm-up, then"
            f" the median of {args.rounds} rounds); the best in bold.",
            "",
            "| model | engine | " + " | ".join(labels) + " |",
            "|---|---|" + "---|" * len(labels),
            *rows,
            "",
            f"Reproduce: `python benchmarks/cpu_tile.py --width {args.width} --height {args.height} --rounds "
            f"{args.rounds} --tiles " + " ".join(map(str, args.tiles)) + "`.",
        ]
    )
    print(text)
    if not args.no_page:
        write_section(PAGE, "cpu tile", text, "## The CPU tile size", "(`benchmarks/cpu_tile.py`.)")


if __name__ == "__main__":
    main()
