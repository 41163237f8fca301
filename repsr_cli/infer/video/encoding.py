"""The ffmpeg command lines of a video job: the decoder, one encoder per segment, the join with the source's
audio and subtitles; and what a request is checked against before any of them runs."""

from __future__ import annotations

import functools
import re
import subprocess
from dataclasses import dataclass
from fractions import Fraction
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...formats.files import check_output
from ...media.ffmpeg import check_crf, ffmpeg_exe, file_url, quality_args
from ...schema import IMAGE_SUFFIXES
from .probe import Colour, Probe
from .segments import SEGMENT_SECONDS

# Which codecs each container can hold without transcoding, and what to transcode to otherwise.
AUDIO_OK = {
    ".mp4": {"aac", "mp3", "ac3", "eac3", "alac", "opus", "flac"},
    ".mov": {"aac", "mp3", "ac3", "eac3", "alac", "pcm_s16le", "pcm_s24le", "pcm_f32le"},
    ".mkv": None,  # anything
    ".webm": {"opus", "vorbis"},
}
AUDIO_FALLBACK = {".mp4": "aac", ".mov": "aac", ".mkv": "flac", ".webm": "libopus"}
TEXT_SUBS = {"subrip", "srt", "ass", "ssa", "mov_text", "webvtt", "text"}
SUBTITLE_CODEC = {".mp4": "mov_text", ".mov": "mov_text", ".mkv": "copy", ".webm": "webvtt"}
MKV_TEXT_OK = {"subrip", "srt", "ass", "ssa", "webvtt", "text"}  # mov_text cannot be copied into Matroska: srt
# ffmpeg's colour-space names (as `ffmpeg -i` prints them) -> the scale filter's matrix names
SCALE_MATRIX = {
    "bt709": "bt709",
    "bt470bg": "bt470",
    "smpte170m": "smpte170m",
    "fcc": "fcc",
    "smpte240m": "smpte240m",
    "bt2020nc": "bt2020",
    "bt2020c": "bt2020",
}
DEFAULT_CODEC = {".webm": "libvpx-vp9"}
CONTAINERS = tuple(AUDIO_OK)
QUIET = ["-hide_banner", "-loglevel", "error"]


@dataclass(frozen=True)
class VideoOptions:
    codec: str | None = None  # default: libx264 (libvpx-vp9 for webm)
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None  # default: yuv420p, or yuv420p10le when the source has more than 8 bits
    start: float | None = None
    duration: float | None = None
    queue_frames: int = 8
    segment_seconds: float = SEGMENT_SECONDS  # what an interruption can lose at most (segments.py)

    def segment_frames(self, fps: Fraction) -> int:
        return max(1, round(self.segment_seconds * fps))


def frames_expected(info: Probe, opts: VideoOptions) -> int | None:
    """Frames the window will hold, from the probed duration and rate (None when the duration is unknown)."""
    span = opts.duration or max(0.0, (info.duration or 0) - (opts.start or 0))
    return round(span * float(info.fps)) or None


def raw_format(info: Probe) -> tuple[str, np.dtype]:
    """The raw RGB frames between ffmpeg and the model: 16 bits per sample for sources over 8 bits."""
    return ("rgb48le", np.dtype("<u2")) if info.high_depth else ("rgb24", np.dtype(np.uint8))


def output_pix_fmt(info: Probe, opts: VideoOptions) -> str:
    return opts.pix_fmt or ("yuv420p10le" if info.high_depth else "yuv420p")


def video_codec(out: Path, opts: VideoOptions) -> str:
    return opts.codec or DEFAULT_CODEC.get(out.suffix.lower(), "libx264")


def even_size(size: tuple[int, int], pix_fmt: str) -> tuple[int, int]:
    """Chroma-subsampled formats (4:2:0, 4:2:2) need even sides: an odd side loses its last row or column."""
    w, h = size
    if pix_fmt.startswith(("yuv420", "yuv422", "yuvj420", "yuvj422", "nv12", "nv21", "p010", "p016")):
        return w - w % 2, h - h % 2
    return w, h


def decode_args(src: Path, info: Probe, opts: VideoOptions) -> list[str]:
    """Raw RGB frames of the window on stdout, converted by the source's own colour matrix and range."""
    args = [ffmpeg_exe(), *QUIET, *_window(opts), "-xerror", "-i", file_url(src)]
    # Frames on the source's nominal rate, timed from the first one: a variable-rate source has frames repeated
    # or dropped to it, so the output keeps its duration and stays in sync with the audio (the encoder's input
    # is constant-rate raw video); a constant-rate one passes unchanged.
    filters = ",".join([*_decode_filters(info.colour), "setpts=PTS-STARTPTS"])
    args += ["-map", f"0:v:{info.video_index}", "-vf", filters]
    return [*args, "-f", "rawvideo", "-pix_fmt", raw_format(info)[0], "-fps_mode", "cfr", "-r", str(info.fps), "-"]


def segment_args(segment: Path, out: Path, info: Probe, size: tuple[int, int], opts: VideoOptions) -> list[str]:
    """One segment: raw frames from stdin, encoded on their own (a keyframe first, so it decodes alone), in
    Matroska, whose timestamps the concat demuxer joins without a gap or an overlap at the seams."""
    w, h = size
    args = [ffmpeg_exe(), *QUIET, "-y", "-f", "rawvideo", "-pix_fmt", raw_format(info)[0]]
    args += ["-s", f"{w}x{h}", "-r", str(info.fps), "-i", "-", *_encode_colour(info.colour, info.sar)]
    args += [*quality_args(video_codec(out, opts), opts.crf, opts.preset), "-pix_fmt", output_pix_fmt(info, opts)]
    return [*args, "-f", "matroska", file_url(segment)]


def join_args(segments: Path, src: Path, out: Path, info: Probe, opts: VideoOptions) -> list[str]:
    """The finished segments joined without re-encoding, with the source's audio, subtitles and metadata (over
    the same window), into the output's container."""
    ext = out.suffix.lower()
    args = [ffmpeg_exe(), *QUIET, "-y", "-f", "concat", "-safe", "0"]
    args += ["-i", file_url(segments), *_window(opts), "-i", file_url(src), "-map", "0:v:0", "-c:v", "copy"]
    audio_ok = AUDIO_OK[ext]
    for i, s in enumerate(info.of_kind("audio")):
        args += ["-map", f"1:a:{i}"]
        keep = audio_ok is None or s.codec in audio_ok
        args += [f"-c:a:{i}", "copy" if keep else AUDIO_FALLBACK[ext]]
    sub_codec = SUBTITLE_CODEC[ext]
    subs = info.of_kind("subtitle")
    text_subs = [i for i, s in enumerate(subs) if s.codec in TEXT_SUBS or sub_codec == "copy"]
    for n, i in enumerate(text_subs):
        copy_ok = sub_codec != "copy" or ext != ".mkv" or subs[i].codec in MKV_TEXT_OK or subs[i].codec not in TEXT_SUBS
        args += ["-map", f"1:s:{i}", f"-c:s:{n}", sub_codec if copy_ok else "srt"]
    if ext in (".mp4", ".mov"):
        args += ["-movflags", "+faststart"]
    return [*args, "-map_metadata", "1", "-f", {".mkv": "matroska"}.get(ext, ext[1:]), file_url(out)]


def check_request(src: Path, out: Path, opts: VideoOptions, overwrite: bool = False) -> None:
    """What can be refused before the source is even probed: before a bar or a decoded frame."""
    if Path(src).suffix.lower() in IMAGE_SUFFIXES:
        raise UserError("is an image: use `repsr upscale` for images", src)
    check_output(out, overwrite, src, example=f"{Path(src).stem}_x4.mp4")
    if out.suffix.lower() not in CONTAINERS:
        raise UserError(f"unsupported container {out.suffix!r} (use {', '.join(CONTAINERS)})", out)
    codec = video_codec(Path(out), opts)
    if codec not in video_encoders():
        raise UserError(f"unknown --codec {codec!r}: this ffmpeg has no such video encoder (`ffmpeg -encoders`)")
    check_crf(codec, opts.crf)


def check_window(info: Probe, opts: VideoOptions, src: Path) -> None:
    """A --start at or past the end decodes nothing: say so, rather than 'no frames decoded'."""
    if opts.start and info.duration is not None and opts.start >= info.duration:
        raise UserError(f"--start {opts.start:g} is past the end of the video ({info.duration:.1f} s)", src)


@functools.lru_cache(maxsize=1)
def video_encoders() -> frozenset[str]:
    """The video encoders the ffmpeg in use has, from `ffmpeg -encoders` (lines ' V..... name  description')."""
    listing = subprocess.run([ffmpeg_exe(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return frozenset(m.group(1) for m in re.finditer(r"^ V\S* (\S+)", listing, re.MULTILINE))


def _window(opts: VideoOptions) -> list[str]:
    args = []
    if opts.start is not None:
        args += ["-ss", f"{opts.start}"]
    if opts.duration is not None:
        args += ["-t", f"{opts.duration}"]
    return args


def _decode_filters(colour: Colour) -> list[str]:
    """The YUV -> RGB conversion by the source's own matrix and range (ffmpeg assumes BT.601 otherwise)."""
    opts = [f"in_color_matrix={SCALE_MATRIX[colour.matrix]}"] if colour.matrix in SCALE_MATRIX else []
    opts += [f"in_range={colour.range}"] if colour.range else []
    return ["scale=" + ":".join(opts)] if opts else []


def _encode_colour(colour: Colour, sar: str | None) -> list[str]:
    """RGB -> YUV by the same matrix and range, and the source's tags on the output."""
    opts = [f"out_color_matrix={SCALE_MATRIX[colour.matrix]}"] if colour.matrix in SCALE_MATRIX else []
    opts += [f"out_range={colour.range}"] if colour.range else []
    filters = ["scale=" + ":".join(opts)] if opts else []
    filters += [f"setsar={sar.replace(':', '/')}"] if sar else []
    # The frames' own tags, which the encoder writes over its options (raw input frames carry none)
    tags = [(k, v) for k, v in (("range", colour.range), ("color_primaries", colour.primaries)) if v]
    tags += [(k, v) for k, v in (("color_trc", colour.transfer), ("colorspace", colour.matrix)) if v]
    filters += ["setparams=" + ":".join(f"{k}={v}" for k, v in tags)] if tags else []
    args = ["-vf", ",".join(filters)] if filters else []
    for flag, value in (
        ("-color_range", colour.range),
        ("-colorspace", colour.matrix),
        ("-color_primaries", colour.primaries),
        ("-color_trc", colour.transfer),
    ):
        if value:
            args += [flag, value]
    return args
