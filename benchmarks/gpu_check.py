"""Every GPU check in one run, for a device lent for a few minutes: writes OUT/gpu-report.md and OUT/gpu-report.json.

1. the tests marked `cuda` (fp16 vs fp32 on Set5, tiled == whole image, batched tiles, a video round trip);
2. `repsr bench` rows on CUDA: fused vs unfused vs bicubic, fp16 and fp32, tiny/small/base;
3. per bundled model, frames/s model-only (fp16, the frame on the GPU) and end to end (host array in, host
   array out; and a folder of PNG files through `upscale_files`) for a 1920x1080 frame at x2, 1280x720 at x3
   and 960x540 at x4 (4K out);
4. `upscale_video` of a 3-second 1080p clip at x2: frames/s and the shares of model, decoder and encoder;
5. training iterations/s, small preset, batch 64, LR patch 64, bf16 autocast, with and without torch.compile;
with the peak GPU memory of each, and where each issue target stands. It needs only the working tree: test
images and the clip are made here; Set5 comes from --set5 when given (for the fp16-vs-fp32 PSNR check).
Without CUDA it says so in one line and exits 0.

Run: python benchmarks/gpu_check.py OUT [--set5 PATH]
"""

from __future__ import annotations

import argparse
import json
import os
import subprocess
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from pathlib import Path

import numpy as np
import torch
import torch.nn.functional as F
from media import synthetic_clip
from PIL import Image

from repsr_cli.data.dataset import Pair, PatchSampler
from repsr_cli.deploy.weights import available_models, load_model
from repsr_cli.infer.batch import OutputPlan, collect_inputs, plan_jobs, upscale_files
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.infer.video import VideoOptions, upscale_video
from repsr_cli.measure.speed import bench, machine_name, timed_together
from repsr_cli.model import RepSRNet, size_config

ROOT = Path(__file__).resolve().parents[1]
FRAMES = {2: (1080, 1920), 3: (720, 1280), 4: (540, 960)}  # LR (height, width): 4K out at every scale
# The targets on an H200-class GPU, model only in fp16 at 960x540 -> 4K.
TARGET_FPS = {"small": 60.0, "tiny": 150.0}
TARGET_TRAIN_IT_S = 30.0


def peak_mib() -> float:
    return torch.cuda.max_memory_allocated() / 2**20


def section(results: dict, name: str, fn: Callable[[], object]) -> None:
    """Run one check; a failure is recorded and the next check still runs."""
    torch.cuda.reset_peak_memory_stats()
    start = time.perf_counter()
    try:
        results[name] = {"result": fn(), "peak_mib": peak_mib()}
    except Exception:
        results[name] = {"error": traceback.format_exc(limit=3)}
    results[name]["seconds"] = time.perf_counter() - start
    print(f"{name}: {time.perf_counter() - start:.0f} s", flush=True)


def cuda_tests(set5: Path | None) -> dict:
    env = {**os.environ, **({"REPSR_SET5": str(set5)} if set5 else {})}
    done = subprocess.run(
        [sys.executable, "-m", "pytest", "-q", "-m", "cuda", str(ROOT / "tests")],
        capture_output=True,
        text=True,
        env=env,
        cwd=ROOT,
        timeout=300,
    )
    lines = [ln for ln in done.stdout.splitlines() if ln.strip()]
    return {"exit_code": done.returncode, "summary": lines[-1] if lines else "", "output": done.stdout[-3000:]}


def bench_rows() -> dict:
    return bench(["tiny", "small", "base"], [4], "cuda", (256, 256), precisions=["fp32", "fp16"])


def throughput(entry_name: str, path: Path, tmp: Path) -> dict:
    net = load_model(path)
    s = net.cfg.scale
    h, w = FRAMES.get(s, (540, 960))
    fused = net.to("cuda", torch.float16, memory_format=torch.channels_last).eval()
    x = torch.rand(1, 3, h, w, device="cuda", dtype=torch.float16).contiguous(memory_format=torch.channels_last)
    frame = np.random.default_rng(0).integers(0, 256, (h, w, 3), dtype=np.uint8)
    up = Upscaler(load_model(path), device="cuda", precision="fp16")
    folder = tmp / f"frames-{entry_name}"
    folder.mkdir()
    for i in range(8):
        Image.fromarray(np.roll(frame, i * 7, axis=1)).save(folder / f"{i}.png", compress_level=1)
    jobs = plan_jobs(collect_inputs([folder]), OutputPlan(tmp / f"out-{entry_name}", "png", "_up"))

    def files() -> None:
        upscale_files(up, jobs, s, overwrite=True)

    with torch.inference_mode():
        seconds = timed_together(
            {"model": lambda: fused(x), "array": lambda: up.upscale_array(frame)},
            torch.device("cuda"),
            rounds=3,
        )
    start = time.perf_counter()
    files()
    folder_fps = len(jobs) / (time.perf_counter() - start)
    return {
        "scale": s,
        "input": f"{w}x{h}",
        "output": f"{w * s}x{h * s}",
        "model_fps": 1 / seconds["model"],
        "array_fps": 1 / seconds["array"],
        "png_folder_fps": folder_fps,
        "tile": up.tile,
    }


def video(model: str, tmp: Path) -> dict:
    src = synthetic_clip(tmp / "clip1080.mp4", "1920x1080", "25", 3)
    up = Upscaler(model, device="cuda", precision="fp16")
    report = upscale_video(up, src, tmp / "clip_x2.mp4", VideoOptions(preset="fast"), overwrite=True, scale=2)
    return {
        "model": model,
        "frames": report.frames,
        "fps": report.frames / report.seconds,
        "model_share": report.model_seconds / report.seconds,
        "decoder_wait_share": report.decode_wait / report.seconds,
        "encoder_wait_share": report.encode_wait / report.seconds,
    }


def training(compile_model: bool, steps: int = 30) -> dict:
    torch.manual_seed(0)
    rng = np.random.default_rng(0)
    pairs = [
        Pair(str(i), hr, hr[::4, ::4].copy()) for i, hr in enumerate(rng.integers(0, 256, (8, 512, 512, 3), np.uint8))
    ]
    sampler = PatchSampler(pairs, 4, 64, 64, seed=0)
    batches = [sampler.batch_at(i) for i in range(4)]
    net = RepSRNet(size_config("small", 4)).to("cuda", memory_format=torch.channels_last).train()
    run = torch.compile(net) if compile_model else net
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    data = [(lr.cuda().contiguous(memory_format=torch.channels_last), hr.cuda()) for lr, hr in batches]

    def step(i: int) -> None:
        lr, hr = data[i % len(data)]
        with torch.autocast("cuda", dtype=torch.bfloat16):
            out = run(lr)
        loss = F.l1_loss(out.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()

    warm = time.perf_counter()
    for i in range(5):
        step(i)
    torch.cuda.synchronize()
    start = time.perf_counter()
    for i in range(steps):
        step(i)
    torch.cuda.synchronize()
    return {"it_s": steps / (time.perf_counter() - start), "warmup_s": start - warm, "compile": compile_model}


def markdown(results: dict, machine: str) -> str:
    lines = ["# GPU check", "", f"Machine: {machine}. Produced by `python benchmarks/gpu_check.py OUT`.", ""]
    for name, entry in results.items():
        lines.append(f"## {name}")
        lines.append("")
        if "error" in entry:
            lines += ["Failed:", "", "```", entry["error"].strip(), "```", ""]
            continue
        lines.append(f"Peak GPU memory {entry['peak_mib']:,.0f} MiB; {entry['seconds']:.0f} s.")
        lines += ["", "```json", json.dumps(entry["result"], indent=1)[:4000], "```", ""]
    lines += ["## Targets (H200-class GPU)", ""]
    for key, entry in results.items():
        res = entry.get("result")
        if key.startswith("throughput ") and res:
            preset = "tiny" if "tiny" in key else "small"
            if res["scale"] == 4 and preset in TARGET_FPS:
                ok = res["model_fps"] >= TARGET_FPS[preset]
                half = res["png_folder_fps"] >= res["model_fps"] / 2
                lines.append(
                    f"- {key}: model-only {res['model_fps']:.1f} fps (target {TARGET_FPS[preset]:.0f}: "
                    f"{'met' if ok else 'missed'}); PNG folder {res['png_folder_fps']:.1f} fps "
                    f"(target half of model-only: {'met' if half else 'missed'})"
                )
        if key.startswith("training") and res:
            ok = res["it_s"] >= TARGET_TRAIN_IT_S
            lines.append(
                f"- {key}: {res['it_s']:.1f} it/s (target {TARGET_TRAIN_IT_S:.0f}: {'met' if ok else 'missed'})"
            )
    return "\n".join(lines) + "\n"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("out", type=Path, help="folder for gpu-report.md and gpu-report.json")
    ap.add_argument("--set5", type=Path, default=None, help="Set5 folder, for the fp16-vs-fp32 PSNR test")
    args = ap.parse_args()
    if not torch.cuda.is_available():
        print("gpu_check: no CUDA device here; nothing to check")
        return
    args.out.mkdir(parents=True, exist_ok=True)
    machine = machine_name(torch.device("cuda"))
    results: dict = {}
    bundled = [e for e in available_models() if e.source == "bundled"]
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        section(results, "cuda tests", lambda: cuda_tests(args.set5))
        section(results, "bench", bench_rows)
        for entry in bundled:
            section(results, f"throughput {entry.name}", lambda e=entry: throughput(e.name, e.path, tmp))
        video_model = next((e.name for e in bundled if e.name == "repsr-real-x2"), "repsr-x2")
        section(results, "video 1080p x2", lambda: video(video_model, tmp))
        for compiled in (False, True):
            section(results, f"training small compile={compiled}", lambda c=compiled: training(c))
    (args.out / "gpu-report.json").write_text(json.dumps({"machine": machine, "results": results}, indent=1))
    (args.out / "gpu-report.md").write_text(markdown(results, machine))
    print(f"wrote {args.out / 'gpu-report.md'}")


if __name__ == "__main__":
    main()
