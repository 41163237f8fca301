"""Small real videos made by the bundled ffmpeg, one per kind of source the probe must read, and their
`ffmpeg -i` reports recorded in tests/fixtures/ffmpeg/ (imageio-ffmpeg ships no ffprobe, so that report is
what `probe` parses).

`python -m tests.ffmpeg_recordings` records them again (after an ffmpeg update, say); the tests parse the
recordings, and make each file again to check that today's ffmpeg still reports what was recorded.
"""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

from repsr_cli.media.ffmpeg import ffmpeg_exe

FOLDER = Path(__file__).parent / "fixtures" / "ffmpeg"
CLIP = ["-f", "lavfi", "-i", "testsrc2=s=64x48:r=25:d=0.4"]
TONE = ["-f", "lavfi", "-i", "sine=d=0.4"]
X264 = ["-c:v", "libx264", "-pix_fmt", "yuv420p"]
SRT = "1\n00:00:00,000 --> 00:00:00,300\nhello\n"

# name -> ffmpeg arguments that make it (in a folder that holds subs.srt and plain.mp4)
RECIPES: dict[str, list[str]] = {
    "h264-8bit-bt709.mp4": [
        *CLIP,
        *TONE,
        "-vf",
        "setparams=range=tv:color_primaries=bt709:color_trc=bt709:colorspace=bt709",
        *X264,
        "-c:a",
        "aac",
        "-shortest",
    ],
    "hevc-10bit-hdr.mkv": [
        *CLIP,
        "-vf",
        "setparams=range=tv:color_primaries=bt2020:color_trc=smpte2084:colorspace=bt2020nc",
        "-c:v",
        "libx265",
        "-x265-params",
        "log-level=error",
        "-pix_fmt",
        "yuv420p10le",
    ],
    "rotated-90.mp4": ["-display_rotation", "90", "-i", "file:plain.mp4", "-c", "copy"],
    "anamorphic.mp4": [*CLIP, "-vf", "setsar=32/27", *X264],
    "rotated-270-anamorphic.mp4": ["-display_rotation", "270", "-i", "file:anamorphic.mp4", "-c", "copy"],
    "variable-rate.mp4": [*CLIP, "-vf", "select='not(eq(mod(n,3),1))'", "-fps_mode", "vfr", *X264],
    "tracks.mkv": [
        *CLIP,
        *TONE,
        "-f",
        "lavfi",
        "-i",
        "sine=f=880:d=0.4",
        "-i",
        "file:subs.srt",
        "-i",
        "file:subs.srt",
        "-map",
        "0:v",
        "-map",
        "1:a",
        "-map",
        "2:a",
        "-map",
        "3:s",
        "-map",
        "4:s",
        *X264,
        "-c:a:0",
        "aac",
        "-c:a:1",
        "libopus",
        "-c:s:0",
        "srt",
        "-c:s:1",
        "ass",
        "-metadata:s:a:0",
        "language=eng",
        "-metadata:s:a:1",
        "language=fra",
        "-metadata:s:s:1",
        "language=deu",
        "-disposition:a:0",
        "0",
        "-disposition:a:1",
        "default",
    ],
    "cover-art.mp4": [
        "-i",
        "file:plain.mp4",
        "-f",
        "lavfi",
        "-i",
        "testsrc2=s=32x32:d=0.04",
        "-map",
        "0:v",
        "-map",
        "1:v",
        "-c:v:0",
        "copy",
        "-c:v:1",
        "png",
        "-disposition:v:1",
        "attached_pic",
    ],
}


def make(folder: Path, name: str) -> Path:
    """Make one recipe's file in `folder` (with what it is made from)."""
    (folder / "subs.srt").write_text(SRT)
    if not (folder / "plain.mp4").exists():
        _ffmpeg(folder, [*CLIP, *X264, "file:plain.mp4"])
    if name == "rotated-270-anamorphic.mp4" and not (folder / "anamorphic.mp4").exists():
        make(folder, "anamorphic.mp4")
    _ffmpeg(folder, [*RECIPES[name], f"file:{name}"])
    return folder / name


def report(folder: Path, name: str) -> str:
    """`ffmpeg -i` on the file, as probe runs it; the file named relative to `folder` so no path is recorded."""
    args = [ffmpeg_exe(), "-hide_banner", "-i", f"file:{name}"]
    return subprocess.run(args, cwd=folder, capture_output=True, text=True, errors="replace").stderr


def recorded(name: str) -> str:
    return (FOLDER / f"{name}.txt").read_text()


def _ffmpeg(folder: Path, args: list[str]) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], cwd=folder, check=True, stdin=subprocess.DEVNULL)


def main() -> None:
    import tempfile

    with tempfile.TemporaryDirectory() as tmp:
        for name in RECIPES:
            make(Path(tmp), name)
            (FOLDER / f"{name}.txt").write_text(report(Path(tmp), name))
            print(f"recorded {name}", file=sys.stderr)


if __name__ == "__main__":
    main()
