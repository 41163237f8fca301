"""Streaming video upscaling through the bundled ffmpeg (imageio-ffmpeg): decode -> model -> encode.

Three stages overlap: a thread reads raw frames from the decoder, the caller's thread runs the model,
a thread writes to the encoder of the current segment; bounded queues keep memory flat. Finished segments
are kept in a work folder (segments.py) until the last one is done; then they are joined without re-encoding
and the source's audio and subtitles are muxed in (stream copy where the container allows), so those are
never decoded. On any failure or Ctrl-C the output does not appear (a complete file or nothing), and the
finished segments stay for `--resume`.
"""

from __future__ import annotations

import functools
import os
import queue
import re
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import numpy as np

from ..errors import UserError
from ..ffmpeg import ffmpeg_exe
from ..formats.files import Busy, check_output, exclusive, sidecar
from ..runtime import PeakMemory
from ..schema import IMAGE_SUFFIXES
from .segments import (
    SEGMENT_SECONDS,
    Manifest,
    concat_list,
    open_work,
    segment_path,
    source_identity,
    weights_digest,
    work_folder,
)
from .upscaler import Upscaler

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
STILL_CODECS = {"png", "bmp", "tiff", "webp", "gif"}  # a stream of these beside another video is cover art
CRF_MAX = {"libx264": 51, "libx265": 51, "libvpx-vp9": 63}
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
LOW_DEPTH_PACKED = ("rgb565", "bgr565", "rgb555", "bgr555", "rgb444", "bgr444")  # endian-suffixed, yet <= 8 bits


@dataclass(frozen=True)
class Colour:
    """How the source's YUV relates to RGB: range (tv/pc), matrix, primaries, transfer; None when untagged."""

    range: str | None = None
    matrix: str | None = None
    primaries: str | None = None
    transfer: str | None = None

    @classmethod
    def parse(cls, inner: str) -> Colour:
        """From the parenthesis after the pixel format: 'tv, bt709', 'tv, bt2020nc/bt2020/smpte2084, progressive'."""
        parts = [p.strip() for p in inner.split(",")]
        rng = next((p for p in parts if p in ("tv", "pc")), None)
        spaces = next(
            (
                p
                for p in parts
                if p not in ("tv", "pc")
                and p.replace("/", "").replace("-", "").isalnum()
                and p not in ("progressive", "top first", "bottom first")
            ),
            None,
        )
        names = (spaces.split("/") * 3)[:3] if spaces and "/" not in spaces else (spaces or "//").split("/")
        known = [None if n in ("", "unknown", "reserved") else n for n in names]
        return cls(rng, *known)

    def decode_filters(self) -> list[str]:
        """The YUV -> RGB conversion by the source's own matrix and range (ffmpeg assumes BT.601 otherwise)."""
        opts = [f"in_color_matrix={SCALE_MATRIX[self.matrix]}"] if self.matrix in SCALE_MATRIX else []
        opts += [f"in_range={self.range}"] if self.range else []
        return ["scale=" + ":".join(opts)] if opts else []

    def encode_args(self, sar: str | None) -> list[str]:
        """RGB -> YUV by the same matrix and range, and the source's tags on the output."""
        opts = [f"out_color_matrix={SCALE_MATRIX[self.matrix]}"] if self.matrix in SCALE_MATRIX else []
        opts += [f"out_range={self.range}"] if self.range else []
        filters = ["scale=" + ":".join(opts)] if opts else []
        filters += [f"setsar={sar.replace(':', '/')}"] if sar else []
        # The frames' own tags, which the encoder writes over its options (raw input frames carry none)
        tags = [(k, v) for k, v in (("range", self.range), ("color_primaries", self.primaries)) if v]
        tags += [(k, v) for k, v in (("color_trc", self.transfer), ("colorspace", self.matrix)) if v]
        filters += ["setparams=" + ":".join(f"{k}={v}" for k, v in tags)] if tags else []
        args = ["-vf", ",".join(filters)] if filters else []
        for flag, value in (
            ("-color_range", self.range),
            ("-colorspace", self.matrix),
            ("-color_primaries", self.primaries),
            ("-color_trc", self.transfer),
        ):
            if value:
                args += [flag, value]
        return args


@dataclass
class Stream:
    index: int
    kind: str  # video | audio | subtitle | data
    codec: str


@dataclass
class Probe:
    width: int
    height: int
    fps: Fraction
    duration: float | None
    video_codec: str
    pix_fmt: str = "yuv420p"
    streams: list[Stream] = field(default_factory=list)
    colour: Colour = field(default_factory=lambda: Colour())
    sar: str | None = None  # sample aspect ratio "a:b" when not square (anamorphic)
    video_index: int = 0  # of the picture stream among the video streams (cover art comes first in some mkv)

    @property
    def high_depth(self) -> bool:
        """More than 8 bits per sample: in ffmpeg's names those formats, and only those (but the packed
        4/5/6-bit RGB ones), carry an endianness suffix: yuv420p10le, p010le, gbrp12le, rgb48le, gray16be."""
        return self.pix_fmt.endswith(("le", "be")) and not self.pix_fmt.startswith(LOW_DEPTH_PACKED)

    def of_kind(self, kind: str) -> list[Stream]:
        return [s for s in self.streams if s.kind == kind]


def ffmpeg() -> str:
    return ffmpeg_exe()


def exact_rate(value: float) -> Fraction:
    """ffmpeg prints rates rounded (29.97); NTSC-style rates are k*1000/1001, anything else a short fraction."""
    for k in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(k * 1000, 1001)
        if abs(value - float(ntsc)) < 0.006:
            return ntsc
    return Fraction(value).limit_denominator(1000)


_STREAM = re.compile(r"Stream #0:(\d+)[^:]*: (Video|Audio|Subtitle|Data): (\w+)")
_SIZE = re.compile(r", (\d{1,5})x(\d{1,5})[ ,]")  # after ", ": a codec tag's hex (avc1 / 0x3163...) never is
_FPS = re.compile(r", ([\d.]+) (?:fps|tbr)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_PIX_FMT = re.compile(r"Video: [^,]+, (\w+)(?:\(([^)]*)\))?")
_SAR = re.compile(r"\[SAR (\d+):(\d+) DAR")


def probe(path: Path) -> Probe:
    """Read stream information from `ffmpeg -i` (imageio-ffmpeg ships no ffprobe)."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if path.is_dir():
        raise UserError("is a folder, not a video", path)
    args = [ffmpeg(), "-hide_banner", "-i", file_url(path)]
    res = subprocess.run(args, capture_output=True, text=True, errors="replace")
    text = res.stderr
    if "Invalid data found" in text or "Input #0" not in text:
        raise UserError("not a video ffmpeg can read", path)
    streams, pictures = [], []
    for line in text.splitlines():
        m = _STREAM.search(line)
        if not m:
            continue
        kind = m.group(2).lower()
        streams.append(Stream(int(m.group(1)), kind, m.group(3)))
        if kind == "video":
            pictures.append(line)
    # The picture stream: never cover art (an attached picture, or a still-image codec beside a real video);
    # among the rest the one marked default, else the first.
    ranked = sorted(
        (("attached pic" in line, m.group(3) in STILL_CODECS, "(default)" not in line, n), n)
        for n, line in enumerate(pictures)
        if (m := _STREAM.search(line))
    )
    if not ranked or ranked[0][0][0]:
        raise UserError("has no video stream", path)
    video_index = ranked[0][1]
    video = pictures[video_index]
    size, fps = _SIZE.search(video), _FPS.search(video)
    if size is None or fps is None:
        raise UserError("cannot tell the video's frame size or rate", path)
    width, height = int(size.group(1)), int(size.group(2))
    quarter_turn = bool(re.search(r"rotation of -?(90|270)", text))
    if quarter_turn:
        width, height = height, width  # ffmpeg rotates on decode
    dur = _DURATION.search(text)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None
    codec = _STREAM.search(video).group(3)
    pix = _PIX_FMT.search(video)
    rate = exact_rate(float(fps.group(1)))
    colour = Colour.parse(pix.group(2)) if pix and pix.group(2) else Colour()
    sar = _SAR.search(video)
    anamorphic = None
    if sar and sar.group(1) != sar.group(2) and sar.group(1) != "0":  # a rotated frame's pixels turn with it
        a, b = (sar.group(2), sar.group(1)) if quarter_turn else (sar.group(1), sar.group(2))
        anamorphic = f"{a}:{b}"
    pix_fmt = pix.group(1) if pix else "yuv420p"
    return Probe(width, height, rate, duration, codec, pix_fmt, streams, colour, anamorphic, video_index)


def file_url(path: Path) -> str:
    """ffmpeg reads 'take1:final.mp4' as protocol 'take1'; the file: protocol makes every name a file name."""
    return f"file:{path}"


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


def _window(opts: VideoOptions) -> list[str]:
    args = []
    if opts.start is not None:
        args += ["-ss", f"{opts.start}"]
    if opts.duration is not None:
        args += ["-t", f"{opts.duration}"]
    return args


def raw_format(info: Probe) -> tuple[str, np.dtype]:
    """The raw RGB frames between ffmpeg and the model: 16 bits per sample for sources over 8 bits."""
    return ("rgb48le", np.dtype("<u2")) if info.high_depth else ("rgb24", np.dtype(np.uint8))


def output_pix_fmt(info: Probe, opts: VideoOptions) -> str:
    return opts.pix_fmt or ("yuv420p10le" if info.high_depth else "yuv420p")


def video_codec(out: Path, opts: VideoOptions) -> str:
    return opts.codec or DEFAULT_CODEC.get(out.suffix.lower(), "libx264")


def segment_args(segment: Path, out: Path, info: Probe, size: tuple[int, int], opts: VideoOptions) -> list[str]:
    """One segment: raw frames from stdin, encoded on their own (a keyframe first, so it decodes alone), in
    Matroska, whose timestamps the concat demuxer joins without a gap or an overlap at the seams."""
    codec = video_codec(out, opts)
    w, h = size
    args = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "rawvideo", "-pix_fmt", raw_format(info)[0]]
    args += ["-s", f"{w}x{h}", "-r", str(info.fps), "-i", "-", *info.colour.encode_args(info.sar)]
    args += ["-c:v", codec, "-pix_fmt", output_pix_fmt(info, opts)]
    if codec in ("libx264", "libx265", "libvpx-vp9"):
        args += ["-crf", str(opts.crf)]
    if codec in ("libx264", "libx265"):
        args += ["-preset", opts.preset]
    if codec == "libvpx-vp9":
        args += ["-b:v", "0", "-row-mt", "1"]
    return [*args, "-f", "matroska", file_url(segment)]


def join_args(segments: Path, src: Path, out: Path, info: Probe, opts: VideoOptions) -> list[str]:
    """The finished segments joined without re-encoding, with the source's audio, subtitles and metadata (over
    the same window), into the output's container."""
    ext = out.suffix.lower()
    args = [ffmpeg(), "-hide_banner", "-loglevel", "error", "-y", "-f", "concat", "-safe", "0"]
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


@dataclass
class VideoReport:
    frames: int
    seconds: float
    model_seconds: float  # the model's share of the wall time
    output: Path
    decode_wait: float = 0.0  # seconds the model waited for decoded frames (the decoder was the bottleneck)
    encode_wait: float = 0.0  # seconds it waited for room in the encoder's queue (the encoder was)
    peak_bytes: int | None = None  # device memory at its peak (CUDA)
    resumed_from: int = 0  # frames an interrupted run had kept (`frames` counts this run's only)


class _Stage(threading.Thread):
    """A thread that remembers its exception for the caller."""

    def __init__(self, target: Callable[[], None]) -> None:
        super().__init__(daemon=True)
        self._work = target
        self.error: BaseException | None = None

    def run(self) -> None:
        try:
            self._work()
        except BaseException as exc:  # handed to the main thread
            self.error = exc


def _read_exactly(stream, n: int) -> bytes:
    chunks, got = [], 0
    while got < n:
        chunk = stream.read(n - got)
        if not chunk:
            break
        chunks.append(chunk)
        got += len(chunk)
    return b"".join(chunks)


POLL = 0.05  # seconds between checks of the other stages while a queue is full or empty


def _put(q: queue.Queue, item: object, go_on: Callable[[], bool]) -> bool:
    """Put unless `go_on()` turns false first (the other side stopped): never blocks for ever."""
    while go_on():
        try:
            q.put(item, timeout=POLL)
            return True
        except queue.Full:
            continue
    return False


def _get(q: queue.Queue, go_on: Callable[[], bool]) -> tuple[bool, object]:
    """(True, item), or (False, None) once `go_on()` is false and nothing is left to take."""
    while True:
        try:
            return True, q.get(timeout=POLL)
        except queue.Empty:
            if not go_on() and q.empty():
                return False, None


def even_size(size: tuple[int, int], pix_fmt: str) -> tuple[int, int]:
    """Chroma-subsampled formats (4:2:0, 4:2:2) need even sides: an odd side loses its last row or column."""
    w, h = size
    if pix_fmt.startswith(("yuv420", "yuv422", "yuvj420", "yuvj422", "nv12", "nv21", "p010", "p016")):
        return w - w % 2, h - h % 2
    return w, h


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
    if codec in CRF_MAX and not 0 <= opts.crf <= CRF_MAX[codec]:
        raise UserError(f"--crf must be 0 to {CRF_MAX[codec]} for {codec}, got {opts.crf}")


def check_window(info: Probe, opts: VideoOptions, src: Path) -> None:
    """A --start at or past the end decodes nothing: say so, rather than 'no frames decoded'."""
    if opts.start and info.duration is not None and opts.start >= info.duration:
        raise UserError(f"--start {opts.start:g} is past the end of the video ({info.duration:.1f} s)", src)


@functools.lru_cache(maxsize=1)
def video_encoders() -> frozenset[str]:
    """The video encoders the ffmpeg in use has, from `ffmpeg -encoders` (lines ' V..... name  description')."""
    listing = subprocess.run([ffmpeg(), "-hide_banner", "-encoders"], capture_output=True, text=True).stdout
    return frozenset(m.group(1) for m in re.finditer(r"^ V\S* (\S+)", listing, re.MULTILINE))


def upscale_video(
    upscaler: Upscaler,
    src: Path,
    out: Path,
    opts: VideoOptions = VideoOptions(),
    overwrite: bool = False,
    on_frame: Callable[[int], None] | None = None,
    scale: float | None = None,
    info: Probe | None = None,
    resume: bool = False,
    on_resume: Callable[[int], None] | None = None,
) -> VideoReport:
    """Upscale `src` by `scale` (default: the model's; other factors finish each frame with a Lanczos resize).

    Frames are encoded in segments kept in a work folder beside the output (segments.py); `resume` continues
    after the last finished one (`on_resume` hears how many frames were kept), and the output appears, whole,
    only when every segment is joined. Any failure on any side (decoder, model, encoder, Ctrl-C, SIGTERM)
    stops both ffmpeg processes and all threads at once; the finished segments stay for a resume."""
    src, out = Path(src), Path(out)
    check_request(src, out, opts, overwrite)
    info = info or probe(src)
    check_window(info, opts, src)
    w, h = info.width, info.height
    factor = scale or upscaler.scale
    size = even_size((max(2, round(w * factor)), max(2, round(h * factor))), output_pix_fmt(info, opts))
    try:
        with exclusive(sidecar(out, ".lock")):
            work = work_folder(out)
            manifest = open_work(work, job_identity(upscaler, src, out, info, size, opts), resume, out)
            if on_resume is not None and manifest.frames_done:
                on_resume(manifest.frames_done)
            return _upscale_locked(upscaler, src, out, opts, on_frame, info, size, work, manifest)
    except Busy:
        raise UserError("another repsr run is writing this output right now", out) from None


def job_identity(
    upscaler: Upscaler, src: Path, out: Path, info: Probe, size: tuple[int, int], opts: VideoOptions
) -> dict[str, object]:
    """Everything that decides the kept frames' pixels and places: a resume must agree on all of it."""
    return {
        "source": source_identity(src),
        "model": {
            "name": upscaler.name,
            "weights": weights_digest(upscaler.net),
            "engine": upscaler.engine,
            "precision": upscaler.precision,
        },
        "output": {"size": f"{size[0]}x{size[1]}", "container": out.suffix.lower()},
        "encode": {
            "codec": video_codec(out, opts),
            "crf": opts.crf,
            "preset": opts.preset,
            "pix_fmt": output_pix_fmt(info, opts),
        },
        "window": {"start": opts.start, "duration": opts.duration},
        "segment_frames": opts.segment_frames(info.fps),
    }


class _SegmentWriter:
    """Encodes frames into segment after segment of the work folder; a segment counts (manifest) only once
    its encoder has finished and it is renamed into place."""

    def __init__(self, work: Path, manifest: Manifest, args: Callable[[Path], list[str]], per: int, log) -> None:
        self.work, self.manifest, self.args, self.per, self.log = work, manifest, args, per, log
        self.encoder: subprocess.Popen | None = None
        self.partial: Path | None = None
        self.frames = 0

    def write(self, data: bytes) -> None:
        if self.encoder is None:
            self.partial = segment_path(self.work, len(self.manifest.segments)).with_suffix(".partial.mkv")
            self.encoder = subprocess.Popen(self.args(self.partial), stdin=subprocess.PIPE, stderr=self.log)
            self.frames = 0
        try:
            self.encoder.stdin.write(data)
        except BrokenPipeError:  # the encoder ended: its exit says why (a Ctrl-C that reached it, a crash)
            raise UserError(f"cannot encode ({_exit_reason(self.encoder.wait()) or 'the encoder stopped'})") from None
        self.frames += 1
        if self.frames == self.per:
            self.finish()

    def finish(self) -> None:
        """Close the open segment and keep it (nothing to do between segments)."""
        if self.encoder is None or self.partial is None:
            return
        self.encoder.stdin.close()
        code = self.encoder.wait()
        if code != 0:
            raise UserError(f"cannot encode ({_first(_log_text(self.log)) or _exit_reason(code)})")
        self.partial.replace(segment_path(self.work, len(self.manifest.segments)))
        self.manifest.segments.append(self.frames)
        self.manifest.save(self.work)
        self.encoder = self.partial = None

    def abort(self) -> None:
        """Kill an unfinished segment's encoder and drop its file."""
        if self.encoder is not None and self.encoder.poll() is None:
            self.encoder.kill()
        if self.encoder is not None:
            self.encoder.wait()
        if self.partial is not None:
            self.partial.unlink(missing_ok=True)
        self.encoder = self.partial = None


def _upscale_locked(
    upscaler: Upscaler,
    src: Path,
    out: Path,
    opts: VideoOptions,
    on_frame: Callable[[int], None] | None,
    info: Probe,
    size: tuple[int, int],
    work: Path,
    manifest: Manifest,
) -> VideoReport:
    """The run itself, under the output's lock: no other run writes this work folder or partial file meanwhile,
    so a partial output there is a killed run's and is removed first."""
    w, h = info.width, info.height
    out_w, out_h = size
    raw, dtype = raw_format(info)
    tmp = sidecar(out, f".partial{out.suffix}")
    tmp.unlink(missing_ok=True)  # left by a run that was killed while joining
    done = manifest.frames_done
    # ffmpeg's stderr goes to files, which never fill up and block it; closed in the `finally` below
    logs = [tempfile.TemporaryFile() for _ in range(2)]  # noqa: SIM115
    decode = [ffmpeg(), "-hide_banner", "-loglevel", "error", *_window(opts), "-xerror", "-i", file_url(src)]
    # Frames on the source's nominal rate, timed from the first one: a variable-rate source has frames repeated
    # or dropped to it, so the output keeps its duration and stays in sync with the audio (the encoder's input
    # is constant-rate raw video); a constant-rate one passes unchanged.
    filters = ",".join([*info.colour.decode_filters(), "setpts=PTS-STARTPTS"])
    decode += ["-map", f"0:v:{info.video_index}", "-vf", filters]
    decode += ["-f", "rawvideo", "-pix_fmt", raw, "-fps_mode", "cfr", "-r", str(info.fps), "-"]
    # stdin closed and a new session: a terminal's Ctrl-C reaches us alone, and we end ffmpeg ourselves
    decoder = subprocess.Popen(decode, stdout=subprocess.PIPE, stderr=logs[0], stdin=subprocess.DEVNULL)
    segments = _SegmentWriter(
        work, manifest, lambda path: segment_args(path, out, info, size, opts), opts.segment_frames(info.fps), logs[1]
    )
    frames_in: queue.Queue = queue.Queue(maxsize=opts.queue_frames)
    frames_out: queue.Queue = queue.Queue(maxsize=opts.queue_frames)
    stop = threading.Event()
    running = lambda: not stop.is_set()  # noqa: E731
    frame_bytes = w * h * 3 * dtype.itemsize

    def read() -> None:
        skipped = 0
        while running():
            buf = _read_exactly(decoder.stdout, frame_bytes)
            if len(buf) < frame_bytes:
                return
            if skipped < done:  # upscaled and kept by the interrupted run: decoded again only to be passed over
                skipped += 1
                continue
            frame = np.frombuffer(buf, dtype).reshape(h, w, 3).astype(dtype.newbyteorder("="), copy=False)
            if not _put(frames_in, frame, running):
                return

    def write() -> None:
        while True:
            got, frame = _get(frames_out, running)
            if not got or not running():
                return
            if frame is None:  # end of stream: the last segment may be shorter
                segments.finish()
                return
            segments.write(frame.astype(dtype, copy=False).tobytes())

    reader, writer = _Stage(read), _Stage(write)
    reader.start()
    writer.start()
    count, model_seconds, decode_wait, encode_wait, start = done, 0.0, 0.0, 0.0, time.perf_counter()
    ok = False
    peak = PeakMemory()
    try:
        while writer.is_alive():
            t0 = time.perf_counter()
            got, frame = _get(frames_in, reader.is_alive)
            t1 = time.perf_counter()
            decode_wait += t1 - t0
            if not got:
                break
            result = upscaler.upscale_array(frame, (out_h, out_w))
            t2 = time.perf_counter()
            model_seconds += t2 - t1
            if not _put(frames_out, result, writer.is_alive):
                break
            encode_wait += time.perf_counter() - t2
            count += 1
            if on_frame is not None:
                on_frame(count)
        if reader.error is None and not reader.is_alive() and decoder.wait() == 0:
            _put(frames_out, None, writer.is_alive)  # the whole stream decoded: the last segment is complete
            writer.join()
        stop.set()
        _shut(stop, (decoder,), (reader, writer))
        _check(decoder, logs[0], writer, count, src, out)
        _join(concat_list(work, len(manifest.segments)), src, tmp, info, opts, out)
        os.replace(tmp, out)
        shutil.rmtree(work, ignore_errors=True)
        ok = True
    except BaseException as exc:
        stop.set()
        segments.abort()  # unblocks a writer stuck on a full pipe
        _shut(stop, (decoder,), (reader, writer))
        segments.abort()  # and drops a segment the writer opened meanwhile
        tmp.unlink(missing_ok=True)
        if manifest.frames_done:
            raise _kept_note(exc, manifest.frames_done, work, out) from None
        raise
    finally:
        if not ok and not manifest.frames_done:
            shutil.rmtree(work, ignore_errors=True)  # nothing worth a resume
        for log in logs:
            log.close()
    seconds = time.perf_counter() - start
    return VideoReport(count - done, seconds, model_seconds, out, decode_wait, encode_wait, peak.read(), done)


def _kept_note(exc: BaseException, kept: int, work: Path, out: Path) -> BaseException:
    """The failure, saying what was kept and how to go on from it; an interruption keeps its exit code."""
    note = f"{kept} upscaled frames kept in {work.name}: the same command with --resume continues from there"
    if isinstance(exc, KeyboardInterrupt):
        return UserError(f"interrupted; {note}", out, exit_code=130)
    if isinstance(exc, SystemExit):
        return UserError(f"stopped by a signal; {note}", out, exit_code=exc.code if isinstance(exc.code, int) else 1)
    if isinstance(exc, UserError):
        return UserError(f"{exc} ({note})", exit_code=exc.exit_code)
    return exc


def _join(segments: Path, src: Path, tmp: Path, info: Probe, opts: VideoOptions, out: Path) -> None:
    """Segments + the source's audio and subtitles -> `tmp`, which must read back as a video."""
    done = subprocess.run(join_args(segments, src, tmp, info, opts), capture_output=True, stdin=subprocess.DEVNULL)
    if done.returncode != 0:
        text = done.stderr.decode(errors="replace")
        raise UserError(f"cannot join the segments ({_first(text) or _exit_reason(done.returncode)})", out)
    _check_written(tmp, out)


def _shut(stop: threading.Event, procs: tuple[subprocess.Popen, ...], stages: tuple[_Stage, ...]) -> None:
    """End everything within a second: kill what still runs (closing its pipes unblocks the threads), reap
    the processes, join the threads."""
    for proc in procs:
        if proc.poll() is None:
            stop.set()
            proc.kill()
    for proc in procs:
        proc.wait()
    stop.set()
    for stage in stages:
        stage.join(timeout=1)


def _check(decoder: subprocess.Popen, log, writer: _Stage, count: int, src: Path, out: Path) -> None:
    dec_err = _log_text(log)
    if decoder.returncode not in (0, -signal.SIGKILL) or (count == 0 and dec_err):
        raise UserError(f"cannot decode the video ({_first(dec_err) or _exit_reason(decoder.returncode)})", src)
    if writer.error is not None:
        if isinstance(writer.error, UserError):
            raise UserError(str(writer.error), out)
        raise UserError(f"cannot encode ({writer.error})", out)
    if count == 0:
        raise UserError("no frames decoded (empty or corrupt video)", src)


def _check_written(tmp: Path, out: Path) -> None:
    """What the encoder left must read back as a video before we call it written."""
    try:
        written = probe(tmp)
    except UserError:
        raise UserError("the encoded file does not read back as a video; nothing written", out) from None
    if written.width <= 0 or not written.of_kind("video"):
        raise UserError("the encoded file holds no video stream; nothing written", out)


def _exit_reason(code: int) -> str:
    """ffmpeg exits with 255 when a signal (Ctrl-C) stops it; a negative code is the signal that killed it."""
    if code == 0:
        return ""
    if code == 255:
        return "ffmpeg was interrupted"
    if code < 0:
        return f"ffmpeg was killed by {signal.Signals(-code).name}"
    return f"ffmpeg failed with exit code {code}"


def _log_text(log) -> str:
    log.seek(0)
    return log.read().decode(errors="replace").strip()


def _first(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
