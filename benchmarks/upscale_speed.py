"""Inference speed and memory: writes docs/performance.md.

1. `repsr bench`: fused vs training-time (unfused) network vs Pillow bicubic, per model size and precision,
   and the Set5 PSNR of the default model in bf16 against fp32.
2. The cost of tiling: output MP/s with tile 128 / 256 / 512 against the whole image.
3. End to end: decode PNG + model + encode PNG against the model alone, on the same image.
4. Peak host memory (RSS) against image size, each size in a fresh process.

Run: python benchmarks/upscale_speed.py [--sizes tiny small base] [--rss-sizes 1000 2000 4000 8000 16000]
"""

from __future__ import annotations

import argparse
import json
import resource
import subprocess
import sys
import tempfile
import time
import zlib
from pathlib import Path

import numpy as np
import torch
from pages import kept_tail
from PIL import Image

from repsr_cli.infer.batch import Job, upscale_files
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.measure import evaluate
from repsr_cli.measure.speed import bench, machine_name, networks, tile_cost, timed_together
from repsr_cli.media import png

ROOT = Path(__file__).resolve().parents[1]
E2E_MODEL = "repsr-x4"  # the default model: what `repsr upscale in.png -s 4` runs
BOUNDS = """## What bounds each number

Rows that are compared (fused, unfused, bicubic and the conv peak; the tile sizes; model-only and end to
end) are timed round-robin in one process (`repsr_cli.measure.speed.timed_together`), so their ratios hold when a
shared VM slows down for a while; absolute figures still differ between runs.

- **Fused vs unfused.** A RepSR block at expand ratio 2 costs 2 x (18 + 2) C^2 multiply-adds per pixel
  against 9 C^2 for the fused 3x3 conv (4.4x), plus BatchNorm passes and branch additions; the measured ratio
  approaches that as the channel count grows and the convs dominate.
- **After the convs.** The nearest-upsampled input is added to the last conv's output before PixelShuffle
  (the same sums, bit for bit), so the only full-resolution pass is the shuffle itself; the Upscaler's PyTorch
  engine does even that on the rounded integers (`DeployNet.subpixels`, `media.tensors.to_array`), and so does
  the OpenVINO graph, which rounds to the image's integer type before its depth-to-space
  (`infer.engines.openvino_model`).
- **Fused GFLOP/s against the conv peak.** The peak is the best single wide 3x3 conv (64-256 channels) in
  the same dtype. Narrow layers (16-32 channels) fill oneDNN's kernels less well, and PReLU, PixelShuffle and
  the residual add are memory-bound passes with no FLOPs counted, so `tiny` sits well below the peak; wider
  model sizes reach it (64-channel layers in a deep stack can even beat a single isolated conv, whose timing
  includes its own memory traffic).
- **bf16 on a CPU.** AVX2 has no bf16 arithmetic: oneDNN converts to fp32 and back, so bf16 is several
  times slower there. With native bf16 (AVX512-BF16, AMX) the wide models run faster in bf16 than in fp32;
  `tiny`'s narrow layers may not gain. `--precision auto` keeps fp32 on AVX2 CPUs and picks bf16 only where
  oneDNN reports native bf16.
- **Bicubic.** Pillow's C resize: memory-bound, one pass per axis.
- **Tiling.** Each tile recomputes a margin of `blocks + 2` input pixels on every side, so a tile of side t
  costs about ((t + 2r) / t)^2 of its area; small tiles also run the convs on small images.
- **End to end.** After the model, the PNG encoder is the largest cost: rows are Up-filtered in numpy and
  deflated in bands on all cores with ISA-L (levels 1-3; against zlib in the line above), then written atomically.
  The model and the encoder do not overlap within one file (the model already keeps every core busy);
  across files the next image is upscaled while the previous one is encoded.
- **Host memory.** Input and output arrays in their own dtype plus one tile's activations (tile side^2 x
  channels x 4 bytes, a few at a time) plus the engine's runtime (torch is imported only where PyTorch runs); the
  automatic tile side is capped at 384 on a CPU (768 in OpenVINO for networks of 32 channels or more; "The CPU
  tile size") and 2048 on a GPU.
"""


def bench_table(report: dict) -> list[str]:
    peak = report["peak_gflops"]
    lines = [
        "| size | precision | fused MP/s | unfused MP/s | fused / unfused | fused GFLOP/s | % of conv peak |"
        " bicubic MP/s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    rows = report["results"]
    for size in dict.fromkeys(r["size"] for r in rows):
        bicubic = next(r for r in rows if r["size"] == size and r["variant"] == "bicubic")
        for precision in peak:
            fused = next(r for r in rows if (r["size"], r["precision"], r["variant"]) == (size, precision, "fused"))
            unfused = next(r for r in rows if (r["size"], r["precision"], r["variant"]) == (size, precision, "unfused"))
            lines.append(
                f"| {size} | {precision} | {fused['mp_per_s']:.2f} | {unfused['mp_per_s']:.2f} | "
                f"{fused['mp_per_s'] / unfused['mp_per_s']:.1f}x | {fused['gflops']:.1f} | "
                f"{100 * fused['gflops'] / peak[precision]:.0f}% | {bicubic['mp_per_s']:.1f} |"
            )
    lines.append("")
    lines.append(
        "Conv peak (best single 3x3 conv of 64-256 channels, same dtype): "
        + ", ".join(f"{k} {v:.1f} GFLOP/s" for k, v in peak.items())
        + "."
    )
    return lines


def synthetic_image(side: int) -> np.ndarray:
    """A smooth pattern with mild noise: compresses like a photograph, reproducible without image files."""
    rng = np.random.default_rng(0)
    y, x = np.mgrid[0:side, 0:side]
    img = ((np.sin(x / 7.0) + np.cos(y / 5.0) + 2) * 60 + rng.integers(0, 10, (side, side))).astype(np.uint8)
    return np.repeat(img[..., None], 3, axis=2)


def deflate_speed(model: str, side: int) -> str:
    """ISA-L (our PNG levels 1-3) against zlib at level 1 on the Up-filtered rows of a real x4 output, one core."""
    pixels = Upscaler(model).upscale_array(synthetic_image(side))
    data = b"".join(png._bands(pixels))
    fns = {
        "ISA-L level 1": lambda: png._deflate_band(data, True, 1),
        "zlib level 1": lambda: zlib.compress(data, 1),
    }
    seconds = timed_together(fns, torch.device("cpu"))
    cells = [
        f"{name} {len(data) / seconds[name] / 1e6:.0f} MB/s, {len(fn()) / len(data):.1%} of raw"
        for name, fn in fns.items()
    ]
    return f"Deflating those {len(data) / 1e6:.1f} MB of filtered rows on one core: " + "; ".join(cells) + "."


def end_to_end(model: str, side: int) -> tuple[float, float]:
    """(end-to-end MP/s, model-only MP/s) for one PNG of side x side, x4, measured together. A trained model,
    because what the encoder gets to compress depends on it (an untrained network outputs noise)."""
    upscaler = Upscaler(model)  # automatic tile size, as users get it
    img = synthetic_image(side)
    out_mp = side * side * 16 / 1e6
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "in.png"
        Image.fromarray(img).save(src)
        job = Job(src, Path(tmp) / "out.png")
        fns = {
            "model": lambda: upscaler.upscale_array(img),
            "files": lambda: upscale_files(upscaler, [job], 4, overwrite=True),
        }
        seconds = timed_together(fns, torch.device(upscaler.device))
    return out_mp / seconds["files"], out_mp / seconds["model"]


def gpu_section(sizes: list[str], side: int) -> list[str]:
    """The same table on the first CUDA GPU, when there is one."""
    if not torch.cuda.is_available():
        return ["No CUDA GPU on this machine: no GPU table. `repsr bench --device cuda` makes one.", ""]
    report = bench(sizes, [4], "cuda", (side, side))
    return [f"## GPU: {report['machine']}", "", *bench_table(report), ""]


def bf16_quality(model: str = "repsr-x4") -> str:
    """Set5 PSNR of a bundled model in fp32 and bf16 through the Upscaler (needs ../shared/data)."""
    set5 = ROOT.parent / "shared" / "data" / "benchmark" / "Set5"
    if not set5.exists():
        return "Set5 not available: bf16 quality not measured."
    pairs = evaluate.load_benchmark(set5, 4)
    psnr = {
        p: evaluate.evaluate(Upscaler(model, precision=p, tile=0).upscale_array, pairs, 4).psnr
        for p in ("fp32", "bf16")
    }
    return (
        f"{model} on Set5: fp32 {psnr['fp32']:.3f} dB, bf16 {psnr['bf16']:.3f} dB "
        f"(difference {psnr['bf16'] - psnr['fp32']:+.3f} dB)."
    )


def rss_child(side: int, model: str) -> None:
    """Run in a fresh process: upscale a side x side image x2 and print peak RSS (MiB) and seconds."""
    _, deploy = networks(model, 2)
    upscaler = Upscaler(deploy)  # automatic tile size
    img = np.full((side, side, 3), 128, np.uint8)
    img[::7] = 40
    t0 = time.perf_counter()
    out = upscaler.upscale_array(img)
    seconds = time.perf_counter() - t0
    print(
        json.dumps(
            {
                "side": side,
                "rss_mib": resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024,
                "seconds": seconds,
                "out_bytes": out.nbytes,
                "in_bytes": img.nbytes,
                "tile": upscaler.tile,
            }
        )
    )


def rss_table(sides: list[int], model: str) -> list[str]:
    lines = ["| input | output | input + output arrays | peak RSS | tile | time |", "|---|---|---|---|---|---|"]
    for side in sides:
        res = subprocess.run(
            [sys.executable, __file__, "--rss-child", str(side), "--rss-model", model],
            capture_output=True,
            text=True,
            check=True,
        )
        r = json.loads(res.stdout.strip().splitlines()[-1])
        arrays = (r["in_bytes"] + r["out_bytes"]) / 2**20
        lines.append(
            f"| {side}x{side} | {2 * side}x{2 * side} | {arrays:.0f} MiB | {r['rss_mib']:.0f} MiB | "
            f"{r['tile']} | {r['seconds']:.1f} s |"
        )
        print(lines[-1], flush=True)
    return lines


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", "--presets", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--size", type=int, default=128, help="LR side for the bench table")
    ap.add_argument("--tile-model", "--tile-preset", default="small")
    ap.add_argument("--e2e-side", type=int, default=512)
    ap.add_argument("--rss-sizes", nargs="+", type=int, default=[1000, 2000, 4000])
    ap.add_argument("--rss-model", "--rss-preset", default="tiny")
    ap.add_argument("--rss-child", type=int)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "performance.md")
    args = ap.parse_args()
    if args.rss_child:
        rss_child(args.rss_child, args.rss_model)
        return
    device = torch.device("cpu")
    report = bench(args.sizes, [4], "cpu", (args.size, args.size))
    lines = [
        f"Machine: {machine_name(device)}. LR input {args.size}x{args.size}, x4, channels_last.",
        "",
        "## Fused vs unfused vs bicubic",
        "",
        *bench_table(report),
        "",
        *gpu_section(args.sizes, args.size),
        "## bf16 against fp32",
        "",
        bf16_quality(),
        "",
    ]
    print("\n".join(lines), flush=True)

    _, deploy = networks(args.tile_model, 4)
    img = np.random.default_rng(0).integers(0, 256, (512, 512, 3), dtype=np.uint8)
    costs = tile_cost(deploy, img, [0, 512, 256, 128])
    lines += [
        "## Cost of tiling",
        "",
        f"{args.tile_model} x4, 512x512 input, whole `upscale_array` path.",
        "",
        "| tile | output MP/s | vs whole image |",
        "|---|---|---|",
    ]
    lines += [f"| {t or 'whole'} | {v:.2f} | {v / costs[0]:.2f} |" for t, v in costs.items()]
    e2e, model_only = end_to_end(E2E_MODEL, args.e2e_side)
    lines += [
        "",
        "## End to end",
        "",
        f"{E2E_MODEL} on a {args.e2e_side}x{args.e2e_side} PNG: decode + model + PNG encode "
        f"{e2e:.2f} MP/s, model alone {model_only:.2f} MP/s: **{100 * e2e / model_only:.0f}%** of model-only.",
        "",
        deflate_speed(E2E_MODEL, args.e2e_side),
        "",
        "## Host memory against image size",
        "",
        f"{args.rss_model} x2, automatic engine and tile size, peak RSS of a fresh process (torch included: the"
        " script builds its random-weight network with it, so an OpenVINO run holds both runtimes).",
        "",
    ]
    print("\n".join(lines[-12:]), flush=True)
    lines += rss_table(args.rss_sizes, args.rss_model)
    header = [
        "# Performance",
        "",
        "Produced by `python benchmarks/upscale_speed.py` "
        f"(`{' '.join(sys.argv[1:]) or 'default arguments'}`); rerun it to get your machine's numbers.",
        "`repsr bench` prints the first table alone (`--device cuda` for a GPU, with fp16 rows).",
        "",
    ]
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text("\n".join(header + lines) + "\n\n" + BOUNDS + kept_tail(args.out))
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
