"""ffmpeg for video and for codec degradations: the binary (the one imageio-ffmpeg bundles, or the one it is
pointed at with IMAGEIO_FFMPEG_EXE; a machine with neither gets one line saying how to get it) and the encoder
settings both sides spell the same way."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache
from pathlib import Path

from ..errors import UserError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    try:
        exe = imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        raise UserError(
            "no ffmpeg found: reinstall imageio-ffmpeg (it bundles one) or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary"
        ) from None
    found = shutil.which(exe)  # imageio-ffmpeg hands back IMAGEIO_FFMPEG_EXE unchecked
    if found is None:
        where = "IMAGEIO_FFMPEG_EXE names" if os.environ.get("IMAGEIO_FFMPEG_EXE") else "imageio-ffmpeg gave"
        raise UserError(f"no ffmpeg at {exe!r} ({where} it; it is not an executable file)")
    return found


# The CRF scale of each encoder that has one (x264 and x265: 0-51; libvpx: 0-63), from their documentation.
CRF_MAX = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63}


def check_crf(encoder: str, crf: int, option: str = "--crf") -> None:
    if encoder in CRF_MAX and not 0 <= crf <= CRF_MAX[encoder]:
        raise UserError(f"{option} must be 0 to {CRF_MAX[encoder]} for {encoder}, got {crf}")


def quality_args(encoder: str, crf: int, preset: str) -> list[str]:
    """The encoder and its constant-quality settings: the one spelling of the video output and of the codec
    degradations that train and evaluate for it."""
    args = ["-c:v", encoder]
    if encoder in CRF_MAX:
        args += ["-crf", str(crf)]
    if encoder in ("libx264", "libx265"):
        args += ["-preset", preset]
    if encoder == "libvpx-vp9":
        args += ["-b:v", "0", "-row-mt", "1"]  # -b:v 0: constant quality, not a bitrate cap (libvpx's docs)
    return args


def file_url(path: Path) -> str:
    """ffmpeg reads 'take1:final.mp4' as protocol 'take1'; the file: protocol makes every name a file name."""
    return f"file:{path}"
