"""Video upscaling speed: fps for a 640x360 clip at x2 and x4 on the CPU, and where the wall time goes.

The model runs in the main thread while decoding and encoding run in ffmpeg processes fed by threads, so
"model share" near 100% means the model is the bottleneck and I/O is fully overlapped.
Writes docs/video-performance.md. Run: python benchmarks/video_speed.py [--preset tiny] [--seconds 2]
"""

from __future__ import annotations

import argparse
import tempfile
from pathlib import Path

import torch
from media import synthetic_clip

from repsr_cli.bench import machine_name, networks
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.infer.video import VideoOptions, upscale_video

ROOT = Path(__file__).resolve().parents[1]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--preset", default="tiny")
    ap.add_argument("--seconds", type=float, default=2)
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "video-performance.md")
    args = ap.parse_args()
    rows = []
    with tempfile.TemporaryDirectory() as tmp:
        src = Path(tmp) / "clip.mp4"
        synthetic_clip(src, "640x360", "25", args.seconds)
        for scale in (2, 4):
            _, deploy = networks(args.preset, scale)
            upscaler = Upscaler(deploy, tile=0)
            opts = VideoOptions(preset="veryfast")
            report = upscale_video(upscaler, src, Path(tmp) / f"out_x{scale}.mp4", opts, overwrite=True)
            share = report.model_seconds / report.seconds
            rows.append(
                f"| x{scale} | {640 * scale}x{360 * scale} | {report.frames} | "
                f"{report.frames / report.seconds:.2f} | {share:.0%} | {1 - share:.0%} |"
            )
            print(rows[-1], flush=True)
    text = "\n".join(
        [
            "# Video performance",
            "",
            f"Machine: {machine_name(torch.device('cpu'))}. {args.preset} preset (random weights: speed does not",
            f"depend on them), a {args.seconds:g} s 640x360 25 fps H.264 clip with AAC audio,",
            "libx264 `veryfast`, CRF 18.",
            "",
            "| scale | output | frames | fps | model share of wall time | decode + encode not hidden |",
            "|---|---|---|---|---|---|",
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
