"""Video upscaling speed: fps for a 640x360 clip at x2 and x4 on the CPU per model size, what a minute of
video costs, and where the wall time goes.

The model runs in the main thread while decoding and encoding run in ffmpeg processes fed by threads, so
"model share" near 100% means the model is the bottleneck and I/O is fully overlapped.
Writes docs/video-performance.md. Run: python benchmarks/video_speed.py [--sizes tiny small base] [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from media import synthetic_clip

from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.infer.video import VideoOptions, upscale_video
from repsr_cli.measure.speed import machine_name, networks

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", "--presets", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "video-performance.md")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        synthetic_clip(src, "640x360", "25", args.seconds)
        for size in args.sizes:
            for scale in (2, 4):
                _, deploy = networks(size, scale)
                upscaler = Upscaler(deploy)  # engine, precision and tile as `upscale-video` chooses them
                opts = VideoOptions(preset="veryfast")
                report = upscale_video(upscaler, src, Path(tmp) / f"out_x{scale}.mp4", opts, overwrite=True)
                share, fps = report.model_seconds / report.seconds, report.frames / report.seconds
                engine = f"{upscaler.engine} {upscaler.precision}"
                rows.append(
                    f"| {size} | {engine} | x{scale} | {640 * scale}x{360 * scale} | {report.frames}"
                    f" | {fps:.2f} | {25 / fps:.1f} | {share:.0%} | {1 - share:.0%} |"
                )
                print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Video performance",
            "",
            f"Machine: {machine_name(torch.device('cpu'))}. Random weights of each model size (speed does not depend",
            f"on them), engine, precision and tile as `upscale-video` picks them; a {args.seconds:g} s 640x360 25 fps"
            " H.264 clip",
            "with AAC audio, libx264 `veryfast`, CRF 18. Minutes per minute: wall time for one minute of this",
            "video at 25 fps.",
            "",
            "| size | engine | scale | output | frames | fps | minutes per minute | model share of wall time |"
            " decode + encode not hidden |",
            "|---|---|---|---|---|---|---|---|---|",
            *rows,
            "",
            "Reproduce: `python benchmarks/video_speed.py`.",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(text)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
