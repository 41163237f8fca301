"""Time to first pixel: where a single-image `repsr upscale` spends its wall time, next to the upscale itself.

Each command runs in a fresh interpreter, the commands taking turns round after round (one untimed run of each
first, which also fills the engine-choice cache, as any second run on a machine finds it):
- `python -c pass`: the interpreter alone;
- the imports: the CLI module, then what an upscale imports (infer.batch, torch with it), then torch alone,
  and what a start without torch would still import (numpy and PIL; OpenVINO where installed);
- `repsr upscale IMAGE -s 4` with the default model for a PNG and with a base-size one, writing a PNG, each
  with the engine `auto` chose (cached) and, where OpenVINO is installed, forced to PyTorch (which imports
  torch) and to OpenVINO (which does not).
For the same models and engines: building the Upscaler (model load, the cached engine choice, the engine's own
setup), its first upscale in a fresh interpreter (where OpenVINO compiles its graph and each engine meets the
image's shape), the upscale of the image warm, and writing the PNG. Issue 45's target: the command
within 1.5x of the in-process upscale.

Run: python benchmarks/startup.py [--rounds 3]
"""

from __future__ import annotations

import argparse
import dataclasses
import re
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pages import write_section
from PIL import Image

from repsr_cli.infer.engines import available
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.measure.speed import machine_name
from repsr_cli.media.read import read_image
from repsr_cli.media.write import write_image

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
MODELS = {"default model": [], "base model": ["-m", "repsr-real-base-x4"]}  # the PNG's default; a base-size model
ENGINES = ["auto", "torch", "openvino"] if available("openvino") else ["auto"]
VARIANTS = {  # label -> (the command's extra arguments, engine)
    f"{model}{'' if engine == 'auto' else f', --engine {engine}'}": ([*extra, "--engine", engine], engine)
    for model, extra in MODELS.items()
    for engine in ENGINES
}
WIDTH, HEIGHT, SCALE = 480, 320, 4


def median_seconds(fn: Callable[[], object], rounds: int) -> float:
    times = []
    for _ in range(rounds):
        start = time.perf_counter()
        fn()
        times.append(time.perf_counter() - start)
    return statistics.median(times)


def upscale_key(variant: str) -> str:
    return f"repsr upscale, {variant}"


def commands(image: Path, out: Path) -> dict[str, list[str]]:
    py = [sys.executable]
    upscale = [*py, "-m", "repsr_cli", "upscale", str(image), "-s", str(SCALE), "-o", str(out), "--overwrite"]
    return {
        "python -c pass": [*py, "-c", "pass"],
        "import repsr_cli.cli": [*py, "-c", "import repsr_cli.cli"],
        "import repsr_cli.infer.batch (an upscale's imports)": [*py, "-c", "import repsr_cli.infer.batch"],
        "import torch": [*py, "-c", "import torch"],
        # what a start without torch still imports: the floor of that path's imports
        "import numpy, PIL.Image": [*py, "-c", "import numpy, PIL.Image"],
        **({"import openvino": [*py, "-c", "import openvino"]} if available("openvino") else {}),
        **{upscale_key(variant): upscale + extra for variant, (extra, _) in VARIANTS.items()},
    }


def time_commands(cmds: dict[str, list[str]], rounds: int) -> tuple[dict[str, float], dict[str, str]]:
    """Median wall time of each command, and the model each upscale said it used."""
    models = {}
    for key, cmd in cmds.items():  # untimed: warms the disk cache and the engine choice
        said = subprocess.run(cmd, check=True, capture_output=True, text=True).stdout
        if match := re.search(r"\(\d+x\d+, ([\w.-]+)\)", said):
            models[key] = match.group(1)
    samples: dict[str, list[float]] = {key: [] for key in cmds}
    for _ in range(rounds):
        for key, cmd in cmds.items():
            start = time.perf_counter()
            subprocess.run(cmd, check=True, capture_output=True)
            samples[key].append(time.perf_counter() - start)
    return {key: statistics.median(t) for key, t in samples.items()}, models


# A fresh interpreter's first upscale, as a command's: OpenVINO compiles its graph then, and every engine meets the
# image's shape for the first time (in a process that already ran one, kernel caches would hide part of it).
FIRST = """
import sys, time
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.media.read import read_image
pixels = read_image(sys.argv[1]).pixels
upscaler = Upscaler(sys.argv[2], engine=sys.argv[3])
start = time.perf_counter()
upscaler.upscale_array(pixels)
print(time.perf_counter() - start)
"""


def first_upscale(image: Path, name: str, engine: str) -> float:
    done = subprocess.run([sys.executable, "-c", FIRST, str(image), name, engine], check=True, capture_output=True)
    return float(done.stdout.split()[-1])


def in_process(image: Path, out: Path, name: str, engine: str, rounds: int) -> dict[str, float | str]:
    picture = read_image(image)
    built = median_seconds(lambda: Upscaler(name, engine=engine), rounds)
    first = statistics.median(first_upscale(image, name, engine) for _ in range(rounds))
    upscaler = Upscaler(name, engine=engine)
    upscaler.upscale_array(picture.pixels)  # warm-up
    upscale = median_seconds(lambda: upscaler.upscale_array(picture.pixels), rounds)
    result = dataclasses.replace(picture, pixels=upscaler.upscale_array(picture.pixels))
    written = median_seconds(lambda: write_image(result, out), rounds)
    return {
        "model": name,
        "engine": f"{upscaler.engine} {upscaler.precision}",
        "build": built,
        "first": first,
        "upscale": upscale,
        "write": written,
    }


def section(walls: dict[str, float], inside: dict[str, dict], rounds: int) -> str:
    rows = [f"| `{key}` | {seconds:.2f} s |" for key, seconds in walls.items()]
    in_rows, ratios = [], []
    for label, r in inside.items():
        in_rows.append(
            f"| {label}: {r['model']} ({r['engine']}) | {r['build']:.2f} s | {r['first']:.2f} s |"
            f" {r['upscale']:.2f} s | {r['write']:.2f} s |"
        )
        wall = walls[upscale_key(label)]
        ratios.append(
            f"- {label}: the command takes {wall:.2f} s, {wall / r['upscale']:.1f}x the in-process "
            f"upscale ({r['upscale']:.2f} s); the target is 1.5x."
        )
    lines = [
        f"Machine: {machine_name(torch.device('cpu'))}. One {WIDTH}x{HEIGHT} PNG (random pixels) upscaled x{SCALE},"
        f" each command in a fresh interpreter, medians of {rounds} rounds taking turns (after one untimed run of"
        " each, so the engine choice is cached, as on any second run).",
        "",
        "| command | wall |",
        "|---|---|",
        *rows,
        "",
        "Building the Upscaler (model load, cached engine choice, engine setup), its first upscale in a fresh"
        " interpreter (OpenVINO compiles its graph then, and every engine meets the image's shape for the first"
        " time), a warm upscale, and writing the PNG.",
        "",
        "| model | build | first upscale | upscale | write |",
        "|---|---|---|---|---|",
        *in_rows,
        "",
        *ratios,
        "",
        f"Reproduce: `python benchmarks/startup.py --rounds {rounds}`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--no-page", action="store_true", help="print the tables only")
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as tmp:
        image, out = Path(tmp) / "in.png", Path(tmp) / "out.png"
        pixels = np.random.default_rng(0).integers(0, 256, (HEIGHT, WIDTH, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(image)
        walls, models = time_commands(commands(image, out), args.rounds)
        inside = {
            variant: in_process(image, Path(tmp) / "again.png", models[upscale_key(variant)], engine, args.rounds)
            for variant, (_, engine) in VARIANTS.items()
        }
    text = section(walls, inside, args.rounds)
    print(text)
    if not args.no_page:
        write_section(PAGE, "startup", text, "## Time to first pixel", "(`benchmarks/startup.py`.)")


if __name__ == "__main__":
    main()
