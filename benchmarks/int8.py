"""Post-training int8 quantization of the bundled models in OpenVINO: what it gains in speed and costs in PSNR.

Each conv's input range is calibrated on LR crops of the training images (../shared/data/train, never the benchmark
sets): the `--percentile` of its values at the high end and 100 minus it at the low end. 99.999 lost less than the
plain min/max (`--percentile 100`) with the base x4 model on clean Set14 and B100 (-0.060 / -0.048 against -0.078 /
-0.076 dB, both runs of this script), the same on Set5. Weights are quantized per output channel. The int8 network
(engines.openvino_model with ranges) is scored like `repsr eval` on Set5, Set14 and B100, clean and JPEG 50, against
the PyTorch fp32 output, and timed on one 480x320 image against repsr's default path and OpenVINO's float path, in
the same process, taking turns.

Issue 45's bar for shipping int8 as an option: at least 1.5x faster than the fastest float path, at no more
than 0.05 dB lost on every cell. The verdict per model is written with the table.

Run: python benchmarks/int8.py [--models NAME ...] [--percentile 99.999]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch
from pages import write_section

from repsr_cli.data.dataset import load_pairs
from repsr_cli.data.degradations import LRDegradation
from repsr_cli.deploy.weights import load_model
from repsr_cli.formats.deploy import plain_of
from repsr_cli.infer.engines import OpenVinoEngine, available
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.measure import evaluate
from repsr_cli.measure.speed import machine_name, timed_rounds
from repsr_cli.media.tensors import to_tensor
from repsr_cli.model import DeployNet
from repsr_cli.runtime import native_bf16

ROOT = Path(__file__).resolve().parents[1]
DATA = ROOT.parent / "shared" / "data"
PAGE = ROOT / "docs" / "performance.md"
MODELS = ["repsr-tiny-x4", "repsr-x4", "repsr-real-x4", "repsr-real-base-x4"]
SETS = ["Set5", "Set14", "B100"]
DEGRADATIONS = ["none", "jpeg:50"]
SPEEDUP, LOSS = 1.5, 0.05  # issue 45's bar
CALIBRATION_IMAGES, CROP = 24, 128


def calibration_ranges(net: DeployNet, percentile: float) -> list[tuple[float, float]]:
    """(low, high) of each conv's input over LR crops of training images spread through the folder."""
    pairs, _ = load_pairs(DATA / "train", net.cfg.scale)
    pairs = pairs[:: max(1, len(pairs) // CALIBRATION_IMAGES)][:CALIBRATION_IMAGES]
    convs = [m for m in net.body if isinstance(m, torch.nn.Conv2d)]
    seen: list[list[np.ndarray]] = [[] for _ in convs]
    hooks = [
        conv.register_forward_pre_hook(lambda _m, args, i=i: seen[i].append(args[0].flatten().numpy().copy()))
        for i, conv in enumerate(convs)
    ]
    with torch.inference_mode():
        for pair in pairs:
            net(to_tensor(pair.lr[:CROP, :CROP]))
    for hook in hooks:
        hook.remove()
    values = [np.concatenate(v) for v in seen]
    return [(float(np.percentile(v, 100 - percentile)), float(np.percentile(v, percentile))) for v in values]


def forward_upscale(engine: OpenVinoEngine):
    """The engine on a whole image: uint8 in, uint8 out."""
    return lambda lr: engine(np.ascontiguousarray(lr)[None], [(0, lr.shape[0], 0, lr.shape[1])])[0]


def measure(name: str, percentile: float, threads: int) -> tuple[list[str], str]:
    net = load_model(name).eval()
    s = net.cfg.scale
    bf16 = native_bf16("cpu")
    int8 = OpenVinoEngine(plain_of(net), threads, bf16=bf16, int8=calibration_ranges(net, percentile))
    reference = Upscaler(net, engine="torch", precision="fp32", tile=0)
    rows, losses = [], []
    for folder in SETS:
        pairs = evaluate.load_benchmark(DATA / "benchmark" / folder, s)
        for text in DEGRADATIONS:
            degraded = evaluate.degrade_pairs(pairs, LRDegradation.parse(text))
            fp32 = evaluate.evaluate(reference.upscale_array, degraded, s).psnr
            quantized = evaluate.evaluate(forward_upscale(int8), degraded, s).psnr
            losses.append(fp32 - quantized)
            label = "clean" if text == "none" else text.replace(":", " ")
            rows.append(f"| {name} | {folder} {label} | {fp32:.3f} | {quantized:.3f} | {quantized - fp32:+.3f} |")
            print(rows[-1], flush=True)
    image = np.random.default_rng(0).integers(0, 256, (320, 480, 3), dtype=np.uint8)
    float_path = forward_upscale(OpenVinoEngine(plain_of(net), threads, bf16=bf16))
    default = Upscaler(net)
    runs = {
        f"repsr default ({default.engine}, {default.precision})": lambda: default.upscale_array(image),
        f"OpenVINO {'bf16' if bf16 else 'fp32'}, whole image": lambda: float_path(image),
        "OpenVINO int8, whole image": lambda: forward_upscale(int8)(image),
    }
    samples = {key: float(np.median(t)) for key, t in timed_rounds(runs, torch.device("cpu"), 3, 0.0).items()}
    fastest_float = min((k for k in samples if "int8" not in k), key=samples.__getitem__)
    speedup = samples[fastest_float] / samples["OpenVINO int8, whole image"]
    worst = max(losses)
    ships = speedup >= SPEEDUP and worst <= LOSS
    verdict = (
        f"{name}: int8 {samples['OpenVINO int8, whole image']:.3f} s against {samples[fastest_float]:.3f} s for "
        f"the fastest float path ({fastest_float}): {speedup:.2f}x; worst cell {-worst:+.3f} dB: "
        + ("meets the bar." if ships else "does not meet the bar (not shipped).")
    )
    print(verdict, flush=True)
    return rows, verdict


def section(rows: list[str], verdicts: list[str], percentile: float, threads: int) -> str:
    lines = [
        f"Machine: {machine_name(torch.device('cpu'))}, {threads} threads. Calibration: conv input ranges at the "
        f"{percentile} / {100 - percentile:g} percentiles over {CALIBRATION_IMAGES} LR crops ({CROP} pixels) of "
        "../shared/data/train; weights per output channel. Y-PSNR by the standard protocol; *fp32*: PyTorch fp32, "
        f"*int8*: OpenVINO with int8 convolutions. Bar (issue 45): >= {SPEEDUP}x the fastest float path, <= {LOSS} "
        "dB lost on every cell.",
        "",
        "| model | set | fp32 dB | int8 dB | int8 - fp32 |",
        "|---|---|---|---|---|",
        *rows,
        "",
        *[f"- {v}" for v in verdicts],
        "",
        f"Reproduce: `python benchmarks/int8.py --percentile {percentile}`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--percentile", type=float, default=99.999)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--no-page", action="store_true", help="print the table only")
    args = ap.parse_args()
    if not available("openvino") or not (DATA / "benchmark").is_dir():
        raise SystemExit("needs openvino (pip install openvino) and ../shared/data")
    torch.set_num_threads(args.threads)
    rows, verdicts = [], []
    for name in args.models:
        more, verdict = measure(name, args.percentile, args.threads)
        rows += more
        verdicts.append(verdict)
    if not args.no_page:
        text = section(rows, verdicts, args.percentile, args.threads)
        write_section(PAGE, "int8", text, "## int8", "(`benchmarks/int8.py`.)")


if __name__ == "__main__":
    main()
