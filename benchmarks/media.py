"""Synthetic media for the tests and benchmarks, so the repository carries no video files."""

from __future__ import annotations

import subprocess
from pathlib import Path

from repsr_cli.media.ffmpeg import ffmpeg_exe


def synthetic_clip(
    path: Path, size: str, rate: str, seconds: float, pix_fmt: str = "yuv420p", subtitles: Path | None = None
) -> Path:
    """A synthetic H.264 clip with a sine tone (ffmpeg's lavfi sources): the tests' and benchmarks' input,
    so the repository carries no video files. `subtitles` (an .srt) adds a text track."""
    cmd = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]
    if subtitles is not None:
        cmd += ["-i", str(subtitles), "-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:s", "srt"]
    audio = "libvorbis" if path.suffix in (".mkv", ".webm") else "aac"
    cmd += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", pix_fmt, "-c:a", audio, str(path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return path
