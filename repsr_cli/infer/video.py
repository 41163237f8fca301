"""Streaming video upscaling through the bundled ffmpeg (imageio-ffmpeg): decode -> model -> encode.

Three stages overlap: a thread reads raw frames from the decoder, the caller's thread runs the model,
a thread writes to the encoder; bounded queues keep memory flat. Audio and subtitles are taken from
the source by the encoder itself (stream copy where the container allows), so they are never decoded.
On any failure or Ctrl-C the partial output is removed: the result is a complete file or nothing.
"""

from __future__ import annotations

import os
import queue
import re
import subprocess
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

import imageio_ffmpeg
import numpy as np

from ..errors import UserError
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
DEFAULT_CODEC = {".webm": "libvpx-vp9"}
CONTAINERS = tuple(AUDIO_OK)
LOW_DEPTH_PACKED = ("rgb565", "bgr565", "rgb555", "bgr555", "rgb444", "bgr444")  # endian-suffixed, yet <= 8 bits


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

    @property
    def high_depth(self) -> bool:
        """More than 8 bits per sample: in ffmpeg's names those formats, and only those (but the packed
        4/5/6-bit RGB ones), carry an endianness suffix: yuv420p10le, p010le, gbrp12le, rgb48le, gray16be."""
        return self.pix_fmt.endswith(("le", "be")) and not self.pix_fmt.startswith(LOW_DEPTH_PACKED)

    def of_kind(self, kind: str) -> list[Stream]:
        return [s for s in self.streams if s.kind == kind]


def ffmpeg() -> str:
    return imageio_ffmpeg.get_ffmpeg_exe()


def synthetic_clip(
    path: Path, size: str, rate: str, seconds: float, pix_fmt: str = "yuv420p", subtitles: Path | None = None
) -> Path:
    """A synthetic H.264 clip with a sine tone (ffmpeg's lavfi sources): the tests' and benchmarks' input,
    so the repository carries no video files. `subtitles` (an .srt) adds a text track."""
    cmd = [ffmpeg(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={size}:rate={rate}"]
    cmd += ["-f", "lavfi", "-i", "sine=frequency=440:sample_rate=22050"]
    if subtitles is not None:
        cmd += ["-i", str(subtitles), "-map", "0:v", "-map", "1:a", "-map", "2:s", "-c:s", "srt"]
    audio = "libvorbis" if path.suffix in (".mkv", ".webm") else "aac"
    cmd += ["-t", str(seconds), "-c:v", "libx264", "-pix_fmt", pix_fmt, "-c:a", audio, str(path)]
    subprocess.run(cmd, check=True, capture_output=True, timeout=120)
    return path


def exact_rate(value: float) -> Fraction:
    """ffmpeg prints rates rounded (29.97); NTSC-style rates are k*1000/1001, anything else a short fraction."""
    for k in (24, 30, 48, 60, 120, 240):
        ntsc = Fraction(k * 1000, 1001)
        if abs(value - float(ntsc)) < 0.006:
            return ntsc
    return Fraction(value).limit_denominator(1000)


_STREAM = re.compile(r"Stream #0:(\d+)[^:]*: (Video|Audio|Subtitle|Data): (\w+)")
_SIZE = re.compile(r", (\d{2,5})x(\d{2,5})[ ,]")
_FPS = re.compile(r", ([\d.]+) (?:fps|tbr)")
_DURATION = re.compile(r"Duration: (\d+):(\d+):([\d.]+)")
_PIX_FMT = re.compile(r"Video: [^,]+, (\w+)")


def probe(path: Path) -> Probe:
    """Read stream information from `ffmpeg -i` (imageio-ffmpeg ships no ffprobe)."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if path.is_dir():
        raise UserError("is a folder, not a video", path)
    res = subprocess.run([ffmpeg(), "-hide_banner", "-i", str(path)], capture_output=True, text=True, errors="replace")
    text = res.stderr
    if "Invalid data found" in text or "Input #0" not in text:
        raise UserError("not a video ffmpeg can read", path)
    streams, video = [], None
    for line in text.splitlines():
        m = _STREAM.search(line)
        if not m:
            continue
        kind = m.group(2).lower()
        streams.append(Stream(int(m.group(1)), kind, m.group(3)))
        if kind == "video" and video is None and "attached pic" not in line:
            video = line
    if video is None:
        raise UserError("has no video stream", path)
    size, fps = _SIZE.search(video), _FPS.search(video)
    if size is None or fps is None:
        raise UserError("cannot tell the video's frame size or rate", path)
    width, height = int(size.group(1)), int(size.group(2))
    if re.search(r"rotation of -?90", text) or re.search(r"rotation of -?270", text):
        width, height = height, width  # ffmpeg rotates on decode
    dur = _DURATION.search(text)
    duration = int(dur.group(1)) * 3600 + int(dur.group(2)) * 60 + float(dur.group(3)) if dur else None
    codec = _STREAM.search(video).group(3)
    pix = _PIX_FMT.search(video)
    rate = exact_rate(float(fps.group(1)))
    return Probe(width, height, rate, duration, codec, pix.group(1) if pix else "yuv420p", streams)


@dataclass(frozen=True)
class VideoOptions:
    codec: str | None = None  # default: libx264 (libvpx-vp9 for webm)
    crf: int = 18
    preset: str = "medium"
    pix_fmt: str | None = None  # default: yuv420p, or yuv420p10le when the source has more than 8 bits
    start: float | None = None
    duration: float | None = None
    queue_frames: int = 8


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


def encoder_args(src: Path, out: Path, info: Probe, size: tuple[int, int], opts: VideoOptions) -> list[str]:
    ext = out.suffix.lower()
    codec = opts.codec or DEFAULT_CODEC.get(ext, "libx264")
    pix_fmt = opts.pix_fmt or ("yuv420p10le" if info.high_depth else "yuv420p")
    w, h = size
    args = [
        ffmpeg(),
        "-hide_banner",
        "-loglevel",
        "error",
        "-y",
        "-f",
        "rawvideo",
        "-pix_fmt",
        raw_format(info)[0],
        "-s",
        f"{w}x{h}",
        "-r",
        str(info.fps),
        "-i",
        "-",
        *_window(opts),
        "-i",
        str(src),
        "-map",
        "0:v:0",
    ]
    audio_ok = AUDIO_OK[ext]
    for i, s in enumerate(info.of_kind("audio")):
        args += ["-map", f"1:a:{i}"]
        keep = audio_ok is None or s.codec in audio_ok
        args += [f"-c:a:{i}", "copy" if keep else AUDIO_FALLBACK[ext]]
    sub_codec = SUBTITLE_CODEC[ext]
    text_subs = [i for i, s in enumerate(info.of_kind("subtitle")) if s.codec in TEXT_SUBS or sub_codec == "copy"]
    for n, i in enumerate(text_subs):
        args += ["-map", f"1:s:{i}", f"-c:s:{n}", sub_codec]
    args += ["-c:v", codec, "-pix_fmt", pix_fmt]
    if codec in ("libx264", "libx265", "libvpx-vp9"):
        args += ["-crf", str(opts.crf)]
    if codec in ("libx264", "libx265"):
        args += ["-preset", opts.preset]
    if codec == "libvpx-vp9":
        args += ["-b:v", "0", "-row-mt", "1"]
    if ext in (".mp4", ".mov"):
        args += ["-movflags", "+faststart"]
    args += ["-map_metadata", "1", "-f", {".mkv": "matroska"}.get(ext, ext[1:]), str(out)]
    return args


@dataclass
class VideoReport:
    frames: int
    seconds: float
    model_seconds: float
    output: Path


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


def upscale_video(
    upscaler: Upscaler,
    src: Path,
    out: Path,
    opts: VideoOptions = VideoOptions(),
    overwrite: bool = False,
    on_frame: Callable[[int], None] | None = None,
) -> VideoReport:
    src, out = Path(src), Path(out)
    if out.suffix.lower() not in CONTAINERS:
        raise UserError(f"unsupported container {out.suffix!r} (use {', '.join(CONTAINERS)})", out)
    if out.exists() and out.resolve() == src.resolve():
        raise UserError("output would overwrite the input", out)
    if out.exists() and not overwrite:
        raise UserError("exists already (--overwrite replaces it)", out)
    info = probe(src)
    w, h = info.width, info.height
    s = upscaler.scale
    raw, dtype = raw_format(info)
    tmp = out.with_name(f".{out.stem}.partial{out.suffix}")
    decoder = subprocess.Popen(
        [
            ffmpeg(),
            "-hide_banner",
            "-loglevel",
            "error",
            *_window(opts),
            "-xerror",
            "-i",
            str(src),
            "-map",
            "0:v:0",
            "-f",
            "rawvideo",
            "-pix_fmt",
            raw,
            "-fps_mode",
            "passthrough",
            "-",
        ],
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
    )
    encoder = subprocess.Popen(
        encoder_args(src, tmp, info, (w * s, h * s), opts), stdin=subprocess.PIPE, stderr=subprocess.PIPE
    )
    frames_in: queue.Queue = queue.Queue(maxsize=opts.queue_frames)
    frames_out: queue.Queue = queue.Queue(maxsize=opts.queue_frames)
    stop = threading.Event()
    frame_bytes = w * h * 3 * dtype.itemsize

    def read() -> None:
        while not stop.is_set():
            buf = _read_exactly(decoder.stdout, frame_bytes)
            if len(buf) < frame_bytes:
                break
            frame = np.frombuffer(buf, dtype).reshape(h, w, 3).astype(dtype.newbyteorder("="), copy=False)
            while not stop.is_set() and not _put(frames_in, frame):
                pass
        while not stop.is_set() and not _put(frames_in, None):
            pass

    def write() -> None:
        while True:
            frame = frames_out.get()
            if frame is None:
                break
            encoder.stdin.write(frame.astype(dtype, copy=False).tobytes())
        encoder.stdin.close()

    reader, writer = _Stage(read), _Stage(write)
    reader.start()
    writer.start()
    count, model_seconds, start = 0, 0.0, time.perf_counter()
    ok = False
    try:
        while True:
            frame = frames_in.get()
            if frame is None:
                break
            t0 = time.perf_counter()
            result = upscaler.upscale_array(frame)
            model_seconds += time.perf_counter() - t0
            while writer.is_alive() and not _put(frames_out, result):
                pass
            if writer.error is not None:
                break
            count += 1
            if on_frame is not None:
                on_frame(count)
        while writer.is_alive() and not _put(frames_out, None):
            pass
        writer.join()
        reader.join()
        decoder.wait()
        encoder.wait()
        _check(decoder, encoder, writer, count, src, out)
        os.replace(tmp, out)
        ok = True
    finally:
        if not ok:
            stop.set()
            for proc in (decoder, encoder):
                if proc.poll() is None:
                    proc.kill()
                proc.wait()
            tmp.unlink(missing_ok=True)
    return VideoReport(count, time.perf_counter() - start, model_seconds, out)


def _put(q: queue.Queue, item: object) -> bool:
    try:
        q.put(item, timeout=0.5)
        return True
    except queue.Full:
        return False


def _check(
    decoder: subprocess.Popen, encoder: subprocess.Popen, writer: _Stage, count: int, src: Path, out: Path
) -> None:
    dec_err = decoder.stderr.read().decode(errors="replace").strip()
    enc_err = encoder.stderr.read().decode(errors="replace").strip()
    if decoder.returncode != 0 or (count == 0 and dec_err):
        raise UserError(f"cannot decode the video ({_first(dec_err) or 'ffmpeg failed'})", src)
    if count == 0:
        raise UserError("no frames decoded (empty or corrupt video)", src)
    if encoder.returncode != 0 or writer.error is not None:
        raise UserError(f"cannot encode ({_first(enc_err) or writer.error})", out)


def _first(text: str) -> str:
    lines = [ln for ln in text.splitlines() if ln.strip()]
    return lines[-1][:200] if lines else ""
