"""CPU backends for the bundled models: our torch path against onnxruntime and OpenVINO running our ONNX export.

Each backend gets the same image and thread count and runs inside the Upscaler (exact tiles, same IO), so the
comparison is end to end; raw outputs are checked equal to torch's within 1e-4 first, then all are timed
together (bench.timed_together), so the ratios compare like with like on a drifting machine. Writes
docs/backends.md.

Run: python benchmarks/backends.py [--size 256] [--threads 2]
"""

from __future__ import annotations

import argparse
from pathlib import Path

import numpy as np
import torch

from repsr_cli.bench import machine_name, timed_together
from repsr_cli.infer.backends import backend_forward
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.schema import BACKENDS
from repsr_cli.weights import available_models, load_model

ROOT = Path(__file__).resolve().parents[1]


def check_equal(net, x: np.ndarray, threads: int) -> None:
    """Each backend's raw output equals torch's fp32 forward within 1e-4, before anything is timed."""
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).numpy()
    for name in BACKENDS[1:]:
        got = backend_forward(name, net, threads)(torch.from_numpy(x)).numpy()
        diff = float(np.abs(got - want).max())
        if diff > 1e-4:
            raise SystemExit(f"{name} differs from torch by {diff:.2g}: not timed")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--size", type=int, default=256, help="side of the square LR input")
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "backends.md")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rng = np.random.default_rng(0)
    x = rng.random((1, 3, 64, 64), dtype=np.float32)
    image = rng.integers(0, 256, (args.size, args.size, 3), dtype=np.uint8)
    variants = {"torch fp32": ("torch", "fp32"), "torch auto": ("torch", "auto")}
    variants.update({name: (name, "fp32") for name in BACKENDS[1:]})
    header = list(variants)
    rows = []
    for entry in [e for e in available_models() if e.source == "bundled"]:
        net = load_model(entry.path)
        check_equal(net, x, args.threads)
        ups = {k: Upscaler(entry.path, precision=p, backend=b) for k, (b, p) in variants.items()}
        seconds = timed_together({k: (lambda u=u: u.upscale_array(image)) for k, u in ups.items()}, torch.device("cpu"))
        mp = args.size * args.size * net.cfg.scale**2 / 1e6
        base = seconds["torch auto"]
        rows.append(
            f"| {entry.name} | "
            + " | ".join(f"{mp / seconds[k]:.2f} ({base / seconds[k]:.2f}x)" for k in header)
            + " |"
        )
        print(rows[-1], flush=True)
    lines = [
        "# CPU backends",
        "",
        f"Machine: {machine_name(torch.device('cpu'))}. End to end through the Upscaler (uint8 image of "
        f"{args.size}x{args.size} in, exact tiles of the default size, image out), {args.threads} threads for every "
        "backend; output megapixels per second, and in brackets the speed against `torch auto` (what `repsr "
        "upscale` runs by default: bf16 where the CPU has bf16 units, else fp32), all timed together in one "
        "process. Each backend's raw output was checked equal to torch's fp32 forward within 1e-4 first; "
        "onnxruntime and OpenVINO run fp32.",
        "",
        "| model | " + " | ".join(header) + " |",
        "|---|" + "---|" * len(header),
        *rows,
        "",
        f"Reproduce: `pip install onnxruntime openvino && python benchmarks/backends.py --size {args.size} "
        f"--threads {args.threads}`.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
