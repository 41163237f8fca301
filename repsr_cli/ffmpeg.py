"""The ffmpeg binary, for video and for codec degradations: the one imageio-ffmpeg bundles, or the one it is
pointed at (IMAGEIO_FFMPEG_EXE); a machine with neither gets one line saying how to get it."""

from __future__ import annotations

from functools import lru_cache

from .errors import UserError


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    import imageio_ffmpeg

    try:
        return imageio_ffmpeg.get_ffmpeg_exe()
    except RuntimeError:
        raise UserError(
            "no ffmpeg found: reinstall imageio-ffmpeg (it bundles one) or set IMAGEIO_FFMPEG_EXE to an ffmpeg binary"
        ) from None
