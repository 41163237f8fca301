"""docs/real-inputs.md: how the bundled models do on compressed inputs, in numbers and in crops.

The tables come from weights/scores.json (run benchmarks/eval_weights.py first). The crops: one Set14 image,
its MATLAB-bicubic x4 LR degraded by JPEG at quality 50 and by one H.264 frame at CRF 26, upscaled by bicubic,
repsr-x4 and repsr-real-x4, beside the HR; the crop window is the HR window of the most edge energy
(picked from the HR alone, not from any model's output), shown at 2x zoom.

Run: python benchmarks/real_inputs.py [--image comic] [--crop 96]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch
from eval_weights import BENCH, DEGRADED_SETS, degraded_table
from PIL import Image, ImageDraw

from repsr_cli.data.degradations import LRDegradation
from repsr_cli.data.presets import DEGRADATIONS
from repsr_cli.deploy.weights import load_model
from repsr_cli.infer.upscaler import CLEAN_ABOVE_QUALITY
from repsr_cli.measure import evaluate
from repsr_cli.measure.metrics import psnr_y
from repsr_cli.measure.speed import machine_name

ROOT = Path(__file__).resolve().parents[1]
MODELS = ("repsr-x4", "repsr-real-x4")
SETTINGS = ("jpeg:50", "h264:26")


def busiest_window(hr: np.ndarray, side: int, step: int = 8) -> tuple[int, int]:
    """Top-left corner of the side x side HR window with the most gradient energy (texture and edges), among
    corners on a `step` grid; window sums from an integral image, so 4K images take a moment."""
    y = hr.astype(np.float64).mean(axis=2)
    energy = np.abs(np.diff(y, axis=0))[:, :-1] + np.abs(np.diff(y, axis=1))[:-1, :]
    summed = np.pad(energy.cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    tops = np.arange(0, energy.shape[0] - side, step)[:, None]
    lefts = np.arange(0, energy.shape[1] - side, step)[None, :]
    bottoms, rights = tops + side, lefts + side
    sums = summed[bottoms, rights] - summed[tops, rights] - summed[bottoms, lefts] + summed[tops, lefts]
    i, j = np.unravel_index(np.argmax(sums), sums.shape)
    return int(tops[i, 0]), int(lefts[0, j])


def panel(images: dict[str, np.ndarray], corner: tuple[int, int], side: int, zoom: int = 2) -> Image.Image:
    """The same window of each image side by side, each enlarged `zoom` times (nearest), labelled."""
    top, left = corner
    tiles = []
    for label, img in images.items():
        crop = Image.fromarray(img[top : top + side, left : left + side])
        crop = crop.resize((side * zoom, side * zoom), Image.Resampling.NEAREST)
        canvas = Image.new("RGB", (side * zoom, side * zoom + 16), "white")
        canvas.paste(crop, (0, 16))
        ImageDraw.Draw(canvas).text((2, 2), label, fill="black")
        tiles.append(canvas)
    out = Image.new("RGB", (sum(t.width for t in tiles) + 4 * (len(tiles) - 1), tiles[0].height), "white")
    x = 0
    for t in tiles:
        out.paste(t, (x, 0))
        x += t.width + 4
    return out


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--image", default="monarch", help="Set14 image name")
    ap.add_argument("--crop", type=int, default=128, help="HR crop side")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "real-inputs.md")
    args = ap.parse_args()
    records = json.loads((ROOT / "weights" / "scores.json").read_text())
    (pair,) = [p for p in evaluate.load_benchmark(BENCH / "Set14", 4) if p.name == args.image]
    corner = busiest_window(pair.hr, args.crop)
    nets = {name: evaluate.network(load_model(name)) for name in MODELS}
    img_dir = args.out.parent / "img"
    img_dir.mkdir(parents=True, exist_ok=True)
    figures = []
    for setting in SETTINGS:
        lr = LRDegradation.parse(setting)(pair.lr)
        outputs = {f"input ({setting})": lr.repeat(4, axis=0).repeat(4, axis=1)}  # nearest: the pixels as they are
        outputs["bicubic"] = evaluate.bicubic(4)(lr)
        outputs.update({name: up(lr) for name, up in nets.items()})
        scores = {k: psnr_y(v, pair.hr, 4) for k, v in outputs.items() if not k.startswith("input")}
        outputs["HR"] = pair.hr
        name = f"real-{setting.replace(':', '')}.png"
        panel(outputs, corner, args.crop).save(img_dir / name)
        figures.append((setting, name, scores))
        print(setting, {k: round(v, 2) for k, v in scores.items()})
    lines = [
        "# Compressed inputs: JPEG photos and video frames",
        "",
        "What people upscale has been through lossy compression. The clean models (`repsr-x2/x3/x4`) were",
        "trained on clean bicubic downscales; the real models (`repsr-real-x2`, `repsr-real-x4`) on the same",
        "images degraded mostly by one JPEG, H.264 or H.265 round trip, some with light noise and blur first",
        "(`repsr train --degradation real`, presets in `repsr_cli/data/presets.py`). `repsr upscale` picks the",
        f"real model for JPEGs up to quality {CLEAN_ABOVE_QUALITY} (estimated from the file's quantization table) and",
        "lossy WebP, the clean one for lossless files and better JPEGs, where the tables below show it ahead;",
        "`upscale-video` uses the real one; `--denoise S` blends the two.",
        "",
        "Protocol (`repsr eval --degrade`): HR cropped to a multiple of the scale, MATLAB bicubic downscale, then a",
        "Pillow JPEG round trip at quality Q (4:2:0) or one frame through libx264 at CRF C (yuv420p, preset",
        "medium, bundled ffmpeg), then the model; PSNR on the BT.601 Y channel with `scale` pixels cropped. In",
        "brackets: the gain over bicubic upscaling of the same degraded input.",
    ]
    for data in DEGRADED_SETS:
        lines += ["", f"## {data}", "", *degraded_table(records, data)]
    lines += [
        "",
        "## Degradation presets (`repsr train --degradation NAME`)",
        "",
        "From `repsr_cli/data/presets.py`, where each is one table of ranges and probabilities:",
        "",
        *[f"- `{name}`: {preset.notes}" for name, preset in DEGRADATIONS.items() if preset is not None],
        "- `bicubic`: the clean MATLAB-bicubic LR of the standard protocol (the clean models' training data).",
    ]
    lines += [
        "",
        "## Crops",
        "",
        f"Set14 `{args.image}`, x4, the {args.crop}x{args.crop} HR window with the most edge energy (chosen from",
        "the HR alone), at 2x zoom; the input is shown enlarged with nearest neighbour. PSNR of the whole image.",
    ]
    for setting, name, scores in figures:
        lines += [
            "",
            f"**{setting}**: " + ", ".join(f"{k} {v:.2f} dB" for k, v in scores.items()),
            "",
            f"![{setting}](img/{name})",
        ]
    lines += [
        "",
        f"Machine for the crops: {machine_name(torch.device('cpu'))}. Reproduce: `python benchmarks/eval_weights.py && "
        "python benchmarks/real_inputs.py`.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
