"""Streaming video upscaling through the bundled ffmpeg (imageio-ffmpeg): decode -> model -> encode.

Three stages overlap: a thread reads raw frames from the decoder, the caller's thread runs the model,
a thread writes to the encoder of the current segment; bounded queues keep memory flat. Finished segments
are kept in a work folder (segments.py) until the last one is done; then they are joined without re-encoding
and the source's audio and subtitles are muxed in (stream copy where the container allows), so those are
never decoded. On any failure or Ctrl-C the output does not appear (a complete file or nothing), and the
finished segments stay for `--resume`.
"""

from __future__ import annotations

import os
import queue
import shutil
import signal
import subprocess
import tempfile
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...formats.files import Busy, exclusive, sidecar
from ...runtime import PeakMemory
from ..upscaler import Upscaler
from .encoding import (
    VideoOptions,
    check_request,
    check_window,
    decode_args,
    even_size,
    join_args,
    output_pix_fmt,
    raw_format,
    segment_args,
    video_codec,
)
from .probe import Probe, probe
from .segments import Manifest, concat_list, open_work, segment_path, source_identity, weights_digest, work_folder


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


def upscale_video(
    upscaler: Upscaler,
    src: Path,
    out: Path,
    opts: VideoOptions | None = None,
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
    src, out, opts = Path(src), Path(out), opts or VideoOptions()
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
            "weights": weights_digest(upscaler.model),
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
    dtype = raw_format(info)[1]
    tmp = sidecar(out, f".partial{out.suffix}")
    tmp.unlink(missing_ok=True)  # left by a run that was killed while joining
    done = manifest.frames_done
    # ffmpeg's stderr goes to files, which never fill up and block it; closed in the `finally` below
    logs = [tempfile.TemporaryFile() for _ in range(2)]  # noqa: SIM115
    # stdin closed and a new session: a terminal's Ctrl-C reaches us alone, and we end ffmpeg ourselves
    decode = decode_args(src, info, opts)
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
