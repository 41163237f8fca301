"""`repsr upscale-video --resume`: an interrupted job continues after its last finished segment, and the joined
result is frame-exact against an uninterrupted run (same frames, same timestamps, nothing doubled or lost at a
seam), whatever stopped it: an exception mid-segment, SIGINT, SIGTERM or SIGKILL."""

from __future__ import annotations

import io
import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from rich.console import Console

from benchmarks.media import synthetic_clip
from repsr_cli.errors import UserError
from repsr_cli.infer.engines import available
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.infer.video import VideoOptions, probe, upscale_video
from repsr_cli.media.ffmpeg import ffmpeg_exe

from .conftest import cli

SECONDS, RATE = 4, "25"  # 100 frames: two 2-second segments of 50 frames


def frames(path: Path) -> list[tuple[str, str]]:
    """(timestamp, md5) of every decoded video frame, by ffmpeg's framemd5 muxer."""
    res = subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-i", str(path), "-map", "0:v:0", "-f", "framemd5", "-"],
        capture_output=True,
        text=True,
        check=True,
    )
    rows = [ln.split(",") for ln in res.stdout.splitlines() if ln and not ln.startswith("#")]
    return [(row[2].strip(), row[5].strip()) for row in rows]


def work(out: Path) -> Path:
    return out.with_name(f".{out.name}.repsr-work")


def kept_segments(out: Path) -> list[int]:
    return json.loads((work(out) / "manifest.json").read_text())["segments"]


@pytest.fixture(scope="module")
def reference(tmp_path_factory: pytest.TempPathFactory, tiny_checkpoint: Path) -> tuple[Path, list]:
    """The clip and the frames of its uninterrupted upscale, which leaves no work folder behind."""
    folder = tmp_path_factory.mktemp("resume")
    src = synthetic_clip(folder / "clip.mp4", "96x64", RATE, seconds=SECONDS)
    out = folder / "whole.mp4"
    result = cli("upscale-video", src, "-m", tiny_checkpoint, "-o", out)
    assert result.returncode == 0, result.stderr
    assert not work(out).exists() and not list(folder.glob(".*"))
    return src, frames(out)


def test_an_exception_mid_segment_keeps_the_finished_segments_and_resume_is_frame_exact(
    tmp_path: Path, reference: tuple[Path, list], tiny_checkpoint: Path
) -> None:
    src, whole = reference
    out = tmp_path / "out.mp4"

    def stop_at(n: int) -> None:
        if n == 70:  # 20 frames into the second segment
            raise KeyboardInterrupt

    with pytest.raises(UserError, match="interrupted; 50 upscaled frames kept") as caught:
        upscale_video(Upscaler(tiny_checkpoint), src, out, on_frame=stop_at)
    assert caught.value.exit_code == 130
    assert kept_segments(out) == [50] and not list(work(out).glob("*.partial.mkv")) and not out.exists()
    result = cli("upscale-video", src, "-m", tiny_checkpoint, "-o", out, "--resume")
    assert result.returncode == 0, result.stderr
    assert "50 frames after the 50 an earlier run kept" in result.stdout
    assert len(whole) == 100 and frames(out) == whole
    assert not work(out).exists()
    assert probe(out).of_kind("audio"), "the source's audio is muxed as before"


@pytest.mark.parametrize(("sig", "code"), [(signal.SIGINT, 130), (signal.SIGTERM, 143), (signal.SIGKILL, -9)])
def test_a_signalled_job_resumes_frame_exact(
    tmp_path: Path, reference: tuple[Path, list], tiny_checkpoint: Path, sig: signal.Signals, code: int
) -> None:
    src, whole = reference
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "repsr_cli", "upscale-video", str(src), "-m", str(tiny_checkpoint), "-o", str(out)]
    proc = subprocess.Popen(cmd, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, start_new_session=True)
    deadline = time.monotonic() + 60
    while not (work(out) / "seg-00000.mkv").exists() and time.monotonic() < deadline:
        time.sleep(0.02)
    assert proc.poll() is None, "the job ended before the signal: make the clip longer"
    os.kill(proc.pid, sig)
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == code, stderr
    if sig != signal.SIGKILL:  # one line that says what was kept and how to go on
        lines = [ln for ln in stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and "--resume" in lines[0], stderr
        assert not list(work(out).glob("*.partial.mkv"))
    children = subprocess.run(["pgrep", "-f", str(work(out))], capture_output=True, text=True).stdout.split()
    if sig == signal.SIGKILL:  # nothing in the process ran: its ffmpeg child sees its pipe close and ends
        deadline = time.monotonic() + 10
        while children and time.monotonic() < deadline:
            time.sleep(0.1)
            children = subprocess.run(["pgrep", "-f", str(work(out))], capture_output=True, text=True).stdout.split()
    assert children == []
    assert kept_segments(out) and not out.exists()
    result = cli("upscale-video", src, "-m", tiny_checkpoint, "-o", out, "--resume")
    assert result.returncode == 0, result.stderr
    assert frames(out) == whole
    assert not work(out).exists()


def test_a_kept_job_is_reported_and_resumed_only_with_the_same_input_and_settings(
    tmp_path: Path, reference: tuple[Path, list], tiny_checkpoint: Path
) -> None:
    src, _ = reference
    clip = tmp_path / "clip.mp4"
    clip.write_bytes(src.read_bytes())
    out = tmp_path / "out.mkv"

    def stop_at(n: int) -> None:
        if n == 60:
            raise KeyboardInterrupt

    with pytest.raises(UserError):
        upscale_video(Upscaler(tiny_checkpoint), clip, out, VideoOptions(crf=20), on_frame=stop_at)
    base = ["upscale-video", clip, "-m", tiny_checkpoint, "-o", out]
    cases = [
        (("--crf", "20"), "add --resume to continue it"),
        (("--resume",), "crf 20, this run asks for 18"),  # the default crf against the kept one
        (("--resume", "--crf", "20", "--preset", "fast"), "preset 'medium', this run asks for 'fast'"),
    ]
    if available("ncnn"):  # frames from another engine would differ by a level here and there
        kept = json.loads((work(out) / "manifest.json").read_text())["identity"]["model"]["engine"]
        other = "torch" if kept == "ncnn" else "ncnn"
        cases.append((("--resume", "--crf", "20", "--engine", other), f"engine '{kept}', this run asks for '{other}'"))
    for extra, words in cases:
        result = cli(*base, *extra)
        assert result.returncode == 1 and words in result.stderr, (extra, result.stderr)
        assert "Traceback" not in result.stderr and len(result.stderr.strip().splitlines()) == 1
    os.utime(clip, ns=(time.time_ns(), time.time_ns() + 10**9))  # the input changed since
    result = cli(*base, "--crf", "20", "--resume")
    assert result.returncode == 1 and "source mtime_ns" in result.stderr, result.stderr
    assert kept_segments(out) == [50]  # refusals touch nothing


def test_progress_starts_at_the_frames_already_done(tmp_path: Path, reference: tuple[Path, list]) -> None:
    from repsr_cli.infer.progress import VideoProgress

    src, _ = reference
    with VideoProgress(Console(file=io.StringIO()), probe(src), VideoOptions()) as progress:
        progress.on_resume(50)
        task = progress.progress.tasks[0]
        assert (task.completed, task.total) == (50, 100)
        progress.on_frame(51)
        assert task.completed == 51 and progress.base == 50
