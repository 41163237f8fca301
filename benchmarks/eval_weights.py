"""Score every bundled model on Set5, Set14 and B100 next to bicubic and published reference rows, on clean
inputs and on degraded ones (JPEG and H.264 applied to the LR, the protocol of `repsr eval --degrade`).

Writes weights/scores.md (the model card's tables) and weights/scores.json (the same numbers, which
benchmarks/real_inputs.py reads for docs/real-inputs.md). Needs ../shared/data/benchmark.
Run: python benchmarks/eval_weights.py   (--from-json: rewrite scores.md from scores.json, no scoring;
--cost: time the real models of each size on this machine into weights/costs.json for the gain-and-cost table)
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import numpy as np
import torch

from repsr_cli.data.degradations import LRDegradation
from repsr_cli.deploy.weights import available_models, default_model, load_model
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.measure import evaluate
from repsr_cli.measure.speed import machine_name, timed_together

ROOT = Path(__file__).resolve().parents[1]
BENCH = ROOT.parent / "shared" / "data" / "benchmark"
SETS = ("Set5", "Set14", "B100")
DEGRADED_SETS = ("Set14", "B100")
DEGRADATIONS = ("none", "jpeg:95", "jpeg:90", "jpeg:75", "jpeg:50", "h264:23", "h264:26", "h264:28")
# x4 PSNR reference rows, as listed in ../shared/data/README.md (sources named there).
REFERENCE_X4 = {
    "FSRCNN": (30.71, 27.59, 26.98),
    "ECBSR-M4C16": (30.87, 27.80, 27.06),
    "ECBSR-M6C40": (31.41, 28.20, 27.33),
    "ECBSR-M10C32": (31.66, 28.15, 27.34),
}


def score_all(models: dict[str, object], scales: list[int]) -> list[dict[str, object]]:
    """One record per (model, scale, set, degradation); each degraded LR set is made once for all models."""
    records = []
    for scale in scales:
        ups = {"bicubic": evaluate.bicubic(scale)}
        ups.update({name: evaluate.network(net) for name, net in models.items() if net.cfg.scale == scale})
        for data in SETS:
            pairs = evaluate.load_benchmark(BENCH / data, scale)
            for setting in DEGRADATIONS if data in DEGRADED_SETS else ("none",):
                degraded = evaluate.degrade_pairs(pairs, LRDegradation.parse(setting))
                for name, upscale in ups.items():
                    r = evaluate.evaluate(upscale, degraded, scale)
                    records.append(
                        {
                            "model": name,
                            "scale": scale,
                            "set": data,
                            "degradation": setting,
                            "psnr": r.psnr,
                            "ssim": r.ssim,
                        }
                    )
                    print(f"x{scale} {data} {setting} {name}: {r.psnr:.3f}", flush=True)
    return records


def clean_table(records: list[dict], names: list[str], scales: list[int]) -> list[str]:
    lines = ["| model | scale | " + " | ".join(SETS) + " |", "|---|---|" + "---|" * len(SETS)]
    get = {(r["model"], r["scale"], r["set"], r["degradation"]): r for r in records}
    for scale in scales:
        for name in ["bicubic", *names]:
            cells = [get.get((name, scale, s, "none")) for s in SETS]
            if all(cells):
                label = name if name == "bicubic" else f"**{name}**"
                lines.append(
                    f"| {label} | x{scale} | " + " | ".join(f"{c['psnr']:.2f} / {c['ssim']:.4f}" for c in cells) + " |"
                )
        if scale == 4:
            lines += [
                f"| {n} (published, PSNR only) | x4 | " + " | ".join(f"{v:.2f}" for v in vals) + " |"
                for n, vals in REFERENCE_X4.items()
            ]
    return lines


def degraded_table(records: list[dict], data: str) -> list[str]:
    """PSNR per degradation for one set; the gain over bicubic on the same inputs in brackets."""
    get = {(r["model"], r["scale"], r["set"], r["degradation"]): r["psnr"] for r in records}
    lines = ["| model | scale | " + " | ".join(DEGRADATIONS) + " |", "|---|---|" + "---|" * len(DEGRADATIONS)]
    for scale in sorted({r["scale"] for r in records}):
        # in the order scored (bicubic first): a set's order would change with the hash seed from run to run
        names = list(dict.fromkeys(r["model"] for r in records if r["scale"] == scale and r["set"] == data))
        for name in names:
            cells = []
            for setting in DEGRADATIONS:
                psnr, base = get[(name, scale, data, setting)], get[("bicubic", scale, data, setting)]
                cells.append(f"{psnr:.2f}" if name == "bicubic" else f"{psnr:.2f} ({psnr - base:+.2f})")
            lines.append(f"| {name} | x{scale} | " + " | ".join(cells) + " |")
    return lines


def size_gain_table(records: list[dict]) -> list[str]:
    """Each base model's Y-PSNR minus that of the small model of its kind and scale, per degradation, Set14 /
    B100: what capacity buys where."""
    get = {(r["model"], r["scale"], r["set"], r["degradation"]): r["psnr"] for r in records}
    lines = [
        "| model | against | scale | " + " | ".join(DEGRADATIONS) + " |",
        "|---|---|---|" + "---|" * len(DEGRADATIONS),
    ]
    for name, scale in sorted({(r["model"], r["scale"]) for r in records if "-base-" in r["model"]}):
        small = name.replace("-base-", "-")
        if (small, scale, DEGRADED_SETS[0], "none") not in get:
            continue
        cells = [
            " / ".join(f"{get[(name, scale, d, s)] - get[(small, scale, d, s)]:+.2f}" for d in DEGRADED_SETS)
            for s in DEGRADATIONS
        ]
        lines.append(f"| {name} | {small} | x{scale} | " + " | ".join(cells) + " |")
    return lines


COST_INPUT = (320, 480)  # LR height, width of the timed image: a small photo


def size_costs(scales: list[int]) -> dict[str, object]:
    """Seconds for one 480x320 image through the bundled real model of each size (the Upscaler `repsr upscale`
    runs: precision auto, default tile), timed together so a busy spell falls on all alike."""
    image = np.random.default_rng(0).integers(0, 256, (*COST_INPUT, 3), dtype=np.uint8)
    fns = {}
    for scale in scales:
        for size in ("small", "base"):
            entry = default_model(scale, "real", size)
            if f"-{size}-" in entry.name or size == "small":
                up = Upscaler(entry.path, name=entry.name, device="cpu")
                fns[(scale, size)] = lambda up=up: up.upscale_array(image)
    seconds = timed_together(fns, torch.device("cpu"), rounds=3, min_time=0.5)
    return {
        "machine": machine_name(torch.device("cpu")),
        "input": f"{COST_INPUT[1]}x{COST_INPUT[0]}",
        "seconds": [{"scale": sc, "size": sz, "seconds": t} for (sc, sz), t in seconds.items()],
    }


def gain_cost_table(records: list[dict], costs: dict[str, object]) -> list[str]:
    """Per real model size and scale: the time one image takes, its cost against the small model, and its Y-PSNR
    gain over the small model on clean input and on the compressed ones (mean and range over the JPEG and
    H.264 cells of Set14 and B100): the table the default size is chosen from."""
    get = {(r["model"], r["scale"], r["set"], r["degradation"]): r["psnr"] for r in records}
    seconds = {(c["scale"], c["size"]): c["seconds"] for c in costs["seconds"]}
    lines = [
        f"| real model | seconds per {costs['input']} image | cost vs small | gain, clean (Set14 / B100) |"
        " gain, compressed: mean (range) |",
        "|---|---|---|---|---|",
    ]
    for (scale, size), t in sorted(seconds.items(), key=lambda item: (item[0][0], item[0][1] != "small")):
        name = default_model(scale, "real", size).name
        small = default_model(scale, "real", "small").name
        gains = {d: [get[(name, scale, s, d)] - get[(small, scale, s, d)] for s in DEGRADED_SETS] for d in DEGRADATIONS}
        lossy = [g for d, pair in gains.items() if d != "none" for g in pair]
        clean = " / ".join(f"{g:+.2f}" for g in gains["none"])
        gain = f"{clean} | {np.mean(lossy):+.2f} ({min(lossy):+.2f} to {max(lossy):+.2f})"
        lines.append(
            f"| {name} | {t:.2f} | {t / seconds[(scale, 'small')]:.1f}x | {gain if size != 'small' else '— | —'} |"
        )
    return lines


def merged(kept: list[dict], scored: list[dict], models: set[str]) -> list[dict]:
    """Every kept record as it was, the rescored models' records replaced where they stood (new ones at the end),
    so the tables keep their order; the bicubic rows scored alongside are the kept ones."""
    key = lambda r: (r["model"], r["scale"], r["set"], r["degradation"])  # noqa: E731
    fresh = {key(r): r for r in scored if r["model"] in models}
    return [fresh.pop(key(r), r) if r["model"] in models else r for r in kept] + list(fresh.values())


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--out", type=Path, default=ROOT / "weights" / "scores.md")
    ap.add_argument("--from-json", action="store_true", help="rewrite the tables from scores.json, no scoring")
    ap.add_argument("--cost", action="store_true", help="time each size of real model on this machine first")
    ap.add_argument("--models", nargs="+", help="rescore only these bundled models (a retrained one) into scores.json")
    args = ap.parse_args()
    cost_path = args.out.with_name("costs.json")
    if args.cost:
        cost_path.write_text(json.dumps(size_costs([2, 4]), indent=1) + "\n")
    if args.from_json:
        records = json.loads(args.out.with_suffix(".json").read_text())
        names = sorted({r["model"] for r in records} - {"bicubic"})
    else:
        bundled = [e for e in available_models() if e.source == "bundled" and e.name in (args.models or [e.name])]
        for entry in bundled:  # an editable install may point at another checkout: say which files are scored
            print(f"scoring {entry.name}: {entry.path}")
        models = {e.name: load_model(e.path) for e in bundled}
        records = score_all(models, sorted({net.cfg.scale for net in models.values()}))
        if args.models:
            records = merged(json.loads(args.out.with_suffix(".json").read_text()), records, set(models))
        names = sorted({r["model"] for r in records} - {"bicubic"})
    scales = sorted({r["scale"] for r in records})
    lines = [
        "# Scores of the bundled models",
        "",
        "PSNR (dB) / SSIM on the Y channel, standard protocol (MATLAB bicubic LR, `scale` pixels cropped).",
        "Produced by `python benchmarks/eval_weights.py` (numbers also in `scores.json`).",
        "",
        *clean_table(records, names, scales),
    ]
    for data in DEGRADED_SETS:
        lines += [
            "",
            f"## Degraded inputs, {data}",
            "",
            "PSNR (dB, Y) when the MATLAB-bicubic LR is degraded before upscaling, as `repsr eval --degrade` does:",
            "`jpeg:Q` is a Pillow JPEG round trip at quality Q (4:2:0), `h264:C` one frame through libx264 at CRF C",
            "(yuv420p, preset medium). In brackets: the gain over bicubic upscaling of the same degraded input.",
            "",
            *degraded_table(records, data),
        ]
    lines += [
        "",
        "## Base over small",
        "",
        "Y-PSNR (dB) of each base (16 x 64) model minus that of the small model of the same kind and scale, on the",
        f"inputs above, {' / '.join(DEGRADED_SETS)}: what four to six times the compute buys, input by input.",
        "",
        *size_gain_table(records),
    ]
    if cost_path.exists():
        costs = json.loads(cost_path.read_text())
        lines += [
            "",
            "## Gain and cost",
            "",
            f"What each size of real model costs and gains: the seconds for one {costs['input']} image through",
            "`repsr upscale`'s Upscaler (precision auto, default tile; timed together, median of 3 rounds, on",
            f"{costs['machine']}; `weights/costs.json`) beside its Y-PSNR gain over the small real model of its",
            "scale (the table above). The default size is chosen from it (README, model choice).",
            "",
            *gain_cost_table(records, costs),
        ]
    args.out.write_text("\n".join(lines) + "\n")
    args.out.with_suffix(".json").write_text(json.dumps(records, indent=1) + "\n")
    print(f"wrote {args.out} and {args.out.with_suffix('.json')}")


if __name__ == "__main__":
    main()
