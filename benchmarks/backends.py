"""CPU backends for the bundled models: our torch path against onnxruntime and OpenVINO running our ONNX export.

repsr offers a backend only where one is at least 1.3x faster end to end than its own path for a bundled model;
on the machine in docs/backends.md none is, so the runtimes are wired in here, for this measurement alone.
Each backend gets the same image and thread count and runs inside the Upscaler (exact tiles, same IO), so the
comparison is end to end; raw outputs are checked equal to torch's within 1e-4 first, then all are timed
together (bench.timed_together), so the ratios compare like with like on a drifting machine. Writes
docs/backends.md.

Run: python benchmarks/backends.py [--size 256] [--threads 2]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch

from repsr_cli.bench import machine_name, timed_together
from repsr_cli.errors import UserError
from repsr_cli.formats.exports import write_onnx
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.model import DeployNet
from repsr_cli.weights import available_models, load_model

ROOT = Path(__file__).resolve().parents[1]


Forward = Callable[[torch.Tensor], torch.Tensor]


def _onnx_file(net: DeployNet, folder: str) -> Path:
    path = Path(folder) / "model.onnx"
    write_onnx(net, path)
    return path


def onnxruntime_forward(net: DeployNet, threads: int) -> Forward:
    try:
        import onnxruntime as ort
    except ImportError:
        raise UserError("benchmarks/backends.py needs onnxruntime: pip install onnxruntime") from None
    with tempfile.TemporaryDirectory() as tmp:
        opts = ort.SessionOptions()
        opts.intra_op_num_threads = threads
        session = ort.InferenceSession(str(_onnx_file(net, tmp)), opts, providers=["CPUExecutionProvider"])
    return lambda x: torch.from_numpy(session.run(["output"], {"input": _array(x)})[0])


def openvino_forward(net: DeployNet, threads: int) -> Forward:
    try:
        import openvino as ov
    except ImportError:
        raise UserError("benchmarks/backends.py needs openvino: pip install openvino") from None
    with tempfile.TemporaryDirectory() as tmp:
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": "f32"}
        compiled = ov.Core().compile_model(str(_onnx_file(net, tmp)), "CPU", config)
    return lambda x: torch.from_numpy(np.asarray(compiled(_array(x))[0]))


def _array(x: torch.Tensor) -> np.ndarray:
    return np.ascontiguousarray(x.float().numpy())


BACKENDS = {"onnxruntime": onnxruntime_forward, "openvino": openvino_forward}


def upscaler_with(name: str, model: Path, threads: int) -> Upscaler:
    """An fp32 CPU Upscaler whose tile batches run in the runtime `name`: tiling and IO stay the Upscaler's."""
    up = Upscaler(model, device="cpu", precision="fp32")
    up._run = BACKENDS[name](load_model(model), threads)
    return up


def check_equal(net, x: np.ndarray, threads: int) -> None:
    """Each backend's raw output equals torch's fp32 forward within 1e-4, before anything is timed."""
    with torch.inference_mode():
        want = net(torch.from_numpy(x)).numpy()
    for name, make in BACKENDS.items():
        got = make(net, threads)(torch.from_numpy(x)).numpy()
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
    header = ["torch fp32", "torch auto", *BACKENDS]
    rows, best = [], 0.0
    for entry in [e for e in available_models() if e.source == "bundled"]:
        net = load_model(entry.path)
        check_equal(net, x, args.threads)
        ups = {"torch fp32": Upscaler(entry.path, precision="fp32"), "torch auto": Upscaler(entry.path)}
        ups.update({name: upscaler_with(name, entry.path, args.threads) for name in BACKENDS})
        seconds = timed_together({k: (lambda u=u: u.upscale_array(image)) for k, u in ups.items()}, torch.device("cpu"))
        mp = args.size * args.size * net.cfg.scale**2 / 1e6
        base = seconds["torch auto"]
        best = max(best, *(base / seconds[k] for k in BACKENDS))
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
        f"Best backend against `torch auto`: {best:.2f}x. "
        + (
            "That is at least 1.3x: offering it behind an option would pay."
            if best >= 1.3
            else "Below 1.3x, so `repsr` offers no other backend; our torch path stays the one that runs."
        ),
        "",
        f"Reproduce: `pip install onnxruntime openvino && python benchmarks/backends.py --size {args.size} "
        f"--threads {args.threads}`.",
        "",
    ]
    args.out.write_text("\n".join(lines))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
