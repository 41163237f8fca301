"""The ffmpeg binary, for video and for codec degradations: the one imageio-ffmpeg bundles, or the one it is
pointed at (IMAGEIO_FFMPEG_EXE); a machine with neither gets one line saying how to get it."""

from __future__ import annotations

import os
import shutil
from functools import lru_cache

from .errors import UserError


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
