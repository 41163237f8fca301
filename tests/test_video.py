"""`repsr upscale-video`: frame count, rate, duration and audio survive; bad input leaves nothing behind."""

from __future__ import annotations

import subprocess
import sys
import time
from fractions import Fraction
from pathlib import Path

import numpy as np
import pytest

from benchmarks.media import synthetic_clip
from repsr_cli.errors import UserError
from repsr_cli.infer.upscaler import Upscaler
from repsr_cli.infer.video import Probe, VideoOptions, probe, upscale_video
from repsr_cli.infer.video.probe import exact_rate
from repsr_cli.media.ffmpeg import ffmpeg_exe

from .conftest import cli, run_cli

SIZE = "48x32"  # small: the model runs on every frame


def count_frames(path: Path) -> int:
    res = subprocess.run(
        [ffmpeg_exe(), "-i", str(path), "-map", "0:v:0", "-f", "null", "-"], capture_output=True, text=True
    )
    return int(
        [ln for ln in res.stderr.replace("\r", "\n").splitlines() if ln.startswith("frame=")][-1]
        .split("=")[1]
        .split()[0]
    )


def audio_seconds(path: Path) -> float:
    res = subprocess.run(
        [ffmpeg_exe(), "-i", str(path), "-map", "0:a:0", "-f", "null", "-"], capture_output=True, text=True
    )
    stamp = [ln for ln in res.stderr.replace("\r", "\n").splitlines() if "time=" in ln][-1]
    h, m, s = stamp.split("time=")[1].split()[0].split(":")
    return int(h) * 3600 + int(m) * 60 + float(s)


def test_exact_rates() -> None:
    assert exact_rate(29.97) == Fraction(30000, 1001)
    assert exact_rate(23.98) == Fraction(24000, 1001)
    assert exact_rate(25.0) == 25
    assert exact_rate(12.5) == Fraction(25, 2)


@pytest.mark.parametrize(("rate", "ext"), [("25", ".mp4"), ("30000/1001", ".mp4"), ("25", ".mkv")])
def test_upscale_keeps_timing_and_audio(tmp_path: Path, tiny_checkpoint: Path, rate: str, ext: str) -> None:
    src = synthetic_clip(tmp_path / f"clip{ext}", SIZE, rate, seconds=2)
    before = probe(src)
    out = tmp_path / f"up{ext}"
    result = cli("upscale-video", src, "-o", out, "-m", tiny_checkpoint, "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    after = probe(out)
    assert (after.width, after.height) == (96, 64)
    assert after.fps == before.fps == exact_rate(float(Fraction(rate)))
    assert count_frames(out) == count_frames(src)
    assert abs(after.duration - before.duration) <= 1 / float(after.fps)
    assert [s.kind for s in after.streams].count("audio") == 1
    assert abs(audio_seconds(out) - audio_seconds(src)) < 0.05
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())  # no temporary left


def test_subtitles_and_preview_window(tmp_path: Path, tiny_checkpoint: Path) -> None:
    srt = tmp_path / "subs.srt"
    srt.write_text("1\n00:00:00,000 --> 00:00:01,500\nhello\n")
    src = synthetic_clip(tmp_path / "clip.mkv", SIZE, "25", seconds=3, subtitles=srt)
    out = tmp_path / "preview.mp4"  # srt -> mov_text for mp4
    result = cli(
        "upscale-video",
        src,
        "-o",
        out,
        "-m",
        tiny_checkpoint,
        "--start",
        "0.5",
        "--duration",
        "1",
        "--preset",
        "ultrafast",
    )
    assert result.returncode == 0, result.stderr
    assert count_frames(out) == 25
    kinds = [s.kind for s in probe(out).streams]
    assert kinds.count("audio") == 1 and kinds.count("subtitle") == 1


def test_bad_videos_give_one_line_errors(tmp_path: Path, tiny_checkpoint: Path) -> None:
    fake = tmp_path / "fake.mp4"
    fake.write_bytes(b"not a video at all")
    audio_only = tmp_path / "tone.m4a"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "sine", "-t", "1", str(audio_only)], check=True)
    src = synthetic_clip(tmp_path / "ok.mp4", SIZE, "25", seconds=0.5)
    existing = tmp_path / "exists.mp4"
    existing.write_bytes(b"keep me")
    cases = [
        (fake, [], "not a video"),
        (audio_only, [], "no video stream"),
        (tmp_path / "missing.mp4", [], "not found"),
        (src, ["-o", existing], "exists"),
        (src, ["-o", tmp_path / "out.avi"], "unsupported container"),
    ]
    for source, extra, message in cases:
        result = cli("upscale-video", source, "-m", tiny_checkpoint, *extra)
        assert result.returncode != 0
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert len(lines) == 1 and message in lines[0], result.stderr
    assert existing.read_bytes() == b"keep me"
    truncated = tmp_path / "truncated.mp4"
    truncated.write_bytes(src.read_bytes()[: len(src.read_bytes()) // 3])
    result = cli("upscale-video", truncated, "-m", tiny_checkpoint, "-o", tmp_path / "t_out.mp4")
    assert result.returncode != 0 and "Traceback" not in result.stderr
    assert not (tmp_path / "t_out.mp4").exists()
    assert not any(p.name.startswith(".") for p in tmp_path.iterdir())


def test_probe_rejects_folders(tmp_path: Path) -> None:
    with pytest.raises(UserError, match="folder"):
        probe(tmp_path)


@pytest.mark.parametrize(("source_fmt", "model_dtype"), [("yuv420p", np.uint8), ("yuv420p10le", np.uint16)])
def test_bit_depth_is_kept(tmp_path: Path, tiny_checkpoint: Path, source_fmt: str, model_dtype: type) -> None:
    """A 10-bit source reaches the model as 16-bit frames and leaves as 10-bit video; 8-bit stays 8-bit."""
    src = synthetic_clip(tmp_path / "clip.mp4", SIZE, "25", seconds=0.4, pix_fmt=source_fmt)
    assert probe(src).pix_fmt == source_fmt
    upscaler = Upscaler(str(tiny_checkpoint))
    seen: set = set()
    model = upscaler.upscale_array

    def spy(frame: np.ndarray, *args, **kwargs) -> np.ndarray:
        seen.add(frame.dtype)
        return model(frame, *args, **kwargs)

    upscaler.upscale_array = spy  # type: ignore[method-assign]
    out = tmp_path / "up.mp4"
    upscale_video(upscaler, src, out, VideoOptions(preset="ultrafast"))
    assert seen == {np.dtype(model_dtype)}
    assert probe(out).pix_fmt == source_fmt


@pytest.mark.parametrize(
    ("pix_fmt", "deep"),
    [
        ("yuv420p", False),
        ("nv12", False),
        ("rgb24", False),
        ("rgb565le", False),
        ("yuv420p10le", True),
        ("p010le", True),
        ("rgb48le", True),
        ("gbrp12le", True),
        ("gray16be", True),
    ],
)
def test_high_depth_formats(pix_fmt: str, deep: bool) -> None:
    assert Probe(8, 8, Fraction(25), None, "h264", pix_fmt).high_depth is deep


def first_frame(path: Path, size: tuple[int, int] | None = None) -> np.ndarray:
    """The first frame as a player shows it (ffmpeg applies the display rotation), optionally resized."""
    scale = ["-vf", f"scale={size[0]}:{size[1]}:flags=area"] if size else []
    args = [ffmpeg_exe(), "-v", "error", "-i", str(path), "-frames:v", "1", *scale]
    raw = subprocess.run([*args, "-f", "rawvideo", "-pix_fmt", "gray", "-"], capture_output=True, check=True).stdout
    return np.frombuffer(raw, np.uint8).astype(np.float64)


@pytest.mark.parametrize("degrees", [90, 180])
def test_rotated_phone_video_keeps_its_orientation(tmp_path: Path, degrees: int) -> None:
    plain = synthetic_clip(tmp_path / "plain.mp4", SIZE, "25", seconds=0.4)
    src = tmp_path / "rotated.mp4"
    subprocess.run(
        [ffmpeg_exe(), "-v", "error", "-display_rotation", str(degrees), "-i", str(plain), "-c", "copy", str(src)],
        check=True,
    )
    shown = (32, 48) if degrees == 90 else (48, 32)
    assert (probe(src).width, probe(src).height) == shown
    out = tmp_path / "up.mp4"
    # a trained model, so the output looks like its input and the comparison below means something
    result = cli("upscale-video", src, "-o", out, "-m", "repsr-tiny-x4", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert (probe(out).width, probe(out).height) == (4 * shown[0], 4 * shown[1])
    expected, got = first_frame(src), first_frame(out, shown)
    assert np.abs(got - expected).mean() < 12  # the picture itself, not just the frame size, is upright
    assert np.abs(got - expected[::-1]).mean() > 3 * np.abs(got - expected).mean()


def test_encoder_failures_after_the_queue_fills_end_at_once(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """25 frames, more than both queues hold: a failing encoder used to leave the reader blocked for ever."""
    src = synthetic_clip(tmp_path / "long.mp4", "160x120", "25", seconds=1)
    cases = [
        (["--codec", "doesnotexist"], "unknown --codec 'doesnotexist'"),
        (["--preset", "notapreset"], "cannot encode"),
        (["--pix-fmt", "nonsense"], "cannot encode"),
        (["-o", tmp_path / "nodir" / "out.mp4"], "does not exist"),
        (["-s", "0"], "--scale must be a positive number"),
        (["-s", "nan"], "--scale must be a positive number"),
    ]
    for extra, message in cases:
        args = ["-o", tmp_path / "out.mp4", *extra] if "-o" not in extra else extra
        start = time.monotonic()
        result = run_cli("upscale-video", src, "-m", tiny_checkpoint, "--preset", "ultrafast", *args)
        assert time.monotonic() - start < 60, extra
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.returncode == 1 and len(lines) == 1 and message in lines[0], (extra, result.stderr)
        assert not any(p.name.startswith(".") or p.name == "out.mp4" for p in tmp_path.iterdir()), extra


def test_any_scale_and_odd_sizes(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """-s 3 of 161x121 gives odd sides, which 4:2:0 cannot hold: the last row and column go. A scale the
    model does not have finishes with a resize instead of silently writing the model's own scale."""
    src = tmp_path / "odd.mkv"  # testsrc keeps odd sizes (testsrc2 rounds them), yuv444p can hold them
    make = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=161x121:rate=25", "-t", "0.4"]
    subprocess.run([*make, "-c:v", "libx264", "-pix_fmt", "yuv444p", str(src)], check=True)
    assert (probe(src).width, probe(src).height) == (161, 121)
    name = f"odd_x3-{tiny_checkpoint.stem}"  # -m names the model in the output's name
    stale = tmp_path / f".{name}.mkv.partial.mkv"
    stale.write_bytes(b"left by a killed run")
    result = cli("upscale-video", src, "-m", tiny_checkpoint, "-s", "3", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert (probe(tmp_path / f"{name}.mkv").width, probe(tmp_path / f"{name}.mkv").height) == (482, 362)
    assert not stale.exists()
    result = cli("upscale-video", src, "-m", tiny_checkpoint, "--preset", "ultrafast", "-o", tmp_path / "d.mkv")
    assert result.returncode == 0 and probe(tmp_path / "d.mkv").width == 322  # no -s: the model's own x2


def test_video_uses_the_real_model_by_default(tmp_path: Path, fake_bundle: Path) -> None:
    src = synthetic_clip(tmp_path / "c.mp4", SIZE, "25", seconds=0.2)
    result = cli("upscale-video", src, "-s", "2", "--preset", "ultrafast")
    assert result.returncode == 0, result.stderr
    assert "with repsr-real-x2" in result.stdout
    result = cli("upscale-video", src, "-s", "2", "--preset", "ultrafast", "--denoise", "0", "-o", tmp_path / "d.mp4")
    assert result.returncode == 0 and "repsr-x2~repsr-real-x2@denoise=0" in result.stdout


def test_ctrl_c_with_sigint_ignored_ends_everything(tmp_path: Path, tiny_checkpoint: Path) -> None:
    """A background job of a non-interactive shell ignores SIGINT; a Ctrl-C still reaches its ffmpeg children
    (same process group). The run must end at once with one error line, no partial file, no child left; the
    finished segments stay for a resume."""
    import os
    import signal

    src = synthetic_clip(tmp_path / "long.mp4", "320x240", "25", seconds=30)  # far longer than the wait below
    out = tmp_path / "out.mp4"
    cmd = [sys.executable, "-m", "repsr_cli", "upscale-video", str(src), "-m", str(tiny_checkpoint), "-o", str(out)]
    proc = subprocess.Popen(
        cmd,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
        start_new_session=True,
        preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_IGN),
    )
    deadline = time.monotonic() + 60
    while not (tmp_path / ".out.mp4.repsr-work" / "seg-00000.mkv").exists() and time.monotonic() < deadline:
        time.sleep(0.1)
    time.sleep(0.5)
    assert proc.poll() is None, "the run ended before the Ctrl-C: make the clip longer"
    os.killpg(proc.pid, signal.SIGINT)  # what a terminal's Ctrl-C does to the foreground group
    _, stderr = proc.communicate(timeout=30)
    assert proc.returncode == 1, stderr
    lines = [ln for ln in stderr.splitlines() if ln.strip() and not ln.startswith("frames")]
    assert len(lines) == 1 and "interrupted" in lines[0] and "--resume" in lines[0], stderr
    assert not out.exists() and not (tmp_path / ".out.mp4.partial.mp4").exists()
    assert not list((tmp_path / ".out.mp4.repsr-work").glob("*.partial.mkv"))
    children = subprocess.run(["pgrep", "-f", str(src)], capture_output=True, text=True).stdout.split()
    assert children == []


def test_a_second_run_to_the_same_output_is_refused_and_a_folder_is_named(tmp_path: Path) -> None:
    from repsr_cli.formats.files import exclusive

    src = synthetic_clip(tmp_path / "c.mp4", SIZE, "25", seconds=0.2)
    out = tmp_path / "o.mp4"
    with exclusive(tmp_path / ".o.mp4.lock"):  # what a live run writing o.mp4 holds
        result = cli("upscale-video", src, "-m", "repsr-tiny-x4", "-o", out)
    assert result.returncode == 1 and "another repsr run is writing this output" in result.stderr, result.stderr
    assert not out.exists()
    result = cli("upscale-video", src, "-m", "repsr-tiny-x4", "-o", tmp_path)
    assert result.returncode == 1 and "is a folder; name the output file" in result.stderr, result.stderr


def _frame_mean(path: Path, matrix: str) -> np.ndarray:
    """Mean RGB of the first frame, decoded with the given matrix (as a player reading the tags would)."""
    cmd = [ffmpeg_exe(), "-v", "error", "-i", f"file:{path}", "-vf", f"scale=in_color_matrix={matrix}:in_range=tv"]
    raw = subprocess.run([*cmd, "-frames:v", "1", "-f", "rawvideo", "-pix_fmt", "rgb24", "-"], capture_output=True)
    return np.frombuffer(raw.stdout, np.uint8).reshape(-1, 3).mean(axis=0)


def test_colour_tags_aspect_and_odd_names_are_kept(tmp_path: Path) -> None:
    """A BT.709 source stays BT.709 (converted and tagged), an anamorphic one keeps its sample aspect, and a
    name with a colon is a file name, not an ffmpeg protocol."""
    src = tmp_path / "take1:red.mp4"
    make = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", "color=c=0xE02010:size=64x48:rate=25", "-t", "0.2"]
    make += ["-vf", "scale=out_color_matrix=bt709:out_range=tv,setsar=32/27", "-c:v", "libx264", "-pix_fmt", "yuv420p"]
    subprocess.run([*make, "-colorspace", "bt709", "-color_range", "tv", f"file:{src}"], check=True)
    out = tmp_path / "out:1.mp4"
    result = cli("upscale-video", src, "-m", "repsr-x2", "-o", out)
    assert result.returncode == 0, result.stderr
    info = probe(out)
    assert (info.colour.matrix, info.colour.range, info.sar) == ("bt709", "tv", "32:27")
    assert np.abs(_frame_mean(out, "bt709") - _frame_mean(src, "bt709")).max() < 3  # no BT.601 shift


def test_cover_art_is_not_the_video_and_bad_requests_are_refused(tmp_path: Path) -> None:
    clip = synthetic_clip(tmp_path / "c.mp4", SIZE, "25", seconds=0.2)
    cover = tmp_path / "cover.png"
    cover.write_bytes(b"")
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "color=c=blue:size=32x32", "-frames:v", "1",
                    "-y", str(cover)], check=True)  # fmt: skip
    art = tmp_path / "art.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", "-i", str(cover), "-i", str(clip), "-map", "0", "-map", "1",
                    "-c", "copy", "-disposition:v:0", "attached_pic", str(art)], check=True)  # fmt: skip
    assert probe(art).video_index == 1
    result = cli("upscale-video", art, "-m", "repsr-tiny-x4", "-o", tmp_path / "o.mp4")
    assert result.returncode == 0, result.stderr
    assert probe(tmp_path / "o.mp4").width == 48 * 4 and "5 frames" in result.stdout, result.stdout
    bad = cli("upscale-video", clip, "-m", "repsr-tiny-x4", "--crf", "99", "-o", tmp_path / "p.mp4")
    assert bad.returncode == 1 and "--crf must be 0 to 51 for libx264" in bad.stderr
    image = cli("upscale-video", cover, "-m", "repsr-tiny-x4")
    assert image.returncode == 1 and "is an image: use `repsr upscale`" in image.stderr


def test_a_variable_rate_source_keeps_its_duration(tmp_path: Path) -> None:
    """Frames of 40 and 500 ms in turn: put on the nominal rate, the output lasts as long (within the last
    frame's duration, which the container's duration does not count)."""
    frames = tmp_path / "f%02d.png"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc2=size=48x32:rate=10", "-frames:v", "6",
                    str(frames)], check=True)  # fmt: skip
    listing = "".join(f"file 'f{i:02d}.png'\nduration {0.5 if i % 2 == 0 else 0.04}\n" for i in range(1, 7))
    (tmp_path / "list.txt").write_text(listing + "file 'f06.png'\n")
    src = tmp_path / "vfr.mkv"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-f", "concat", "-i", str(tmp_path / "list.txt"), "-fps_mode", "vfr",
                    "-c:v", "libx264", "-pix_fmt", "yuv420p", str(src)], check=True)  # fmt: skip
    result = cli("upscale-video", src, "-m", "repsr-tiny-x4", "-o", tmp_path / "o.mkv")
    assert result.returncode == 0, result.stderr
    source, output = probe(src).duration, probe(tmp_path / "o.mkv").duration
    assert source is not None and output is not None and source - 0.05 <= output <= source + 0.55, (source, output)


def test_default_video_names_say_the_blend(tmp_path: Path, fake_bundle: Path) -> None:
    src = synthetic_clip(tmp_path / "c.mp4", SIZE, "25", seconds=0.2)
    assert cli("upscale-video", src, "-s", "2", "--preset", "ultrafast", "--detail", "0.5").returncode == 0
    assert cli("upscale-video", src, "-s", "2", "--preset", "ultrafast").returncode == 0  # not "exists"
    assert sorted(p.name for p in tmp_path.glob("c_x2*")) == ["c_x2-detail0.5.mp4", "c_x2.mp4"]


@pytest.mark.parametrize(
    ("params", "expected"),
    [
        ("colorprim=bt709:transfer=bt709:colormatrix=bt709", ("bt709",) * 3),
        ("colorprim=bt2020:transfer=smpte2084:colormatrix=bt2020nc", ("bt2020", "smpte2084", "bt2020nc")),
    ],
)
def test_primaries_and_transfer_are_tagged_on_the_output(tmp_path: Path, params: str, expected: tuple) -> None:
    """A BT.709 source and an HDR10 one (BT.2020 primaries, PQ transfer) keep every colour tag: players would
    show untagged HDR washed out."""
    src = tmp_path / "src.mp4"
    make = [ffmpeg_exe(), "-v", "error", "-y", "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=25", "-t", "0.2"]
    make += ["-c:v", "libx264", "-pix_fmt", "yuv420p10le", "-x264-params", params, str(src)]
    subprocess.run(make, check=True)
    assert (probe(src).colour.primaries, probe(src).colour.transfer, probe(src).colour.matrix) == expected
    out = tmp_path / "out.mp4"
    assert cli("upscale-video", src, "-m", "repsr-tiny-x4", "-o", out, "--preset", "ultrafast").returncode == 0
    assert probe(out).colour == probe(src).colour


def test_tiny_frames_a_late_start_and_a_rotated_anamorphic_source(tmp_path: Path) -> None:
    src = tmp_path / "tiny.mkv"
    make = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", "testsrc=size=8x6:rate=25", "-t", "0.2"]
    subprocess.run([*make, "-c:v", "libx264", "-pix_fmt", "yuv444p", str(src)], check=True)
    assert (probe(src).width, probe(src).height) == (8, 6)  # one digit a side is a size too
    result = cli("upscale-video", src, "-m", "repsr-tiny-x4", "--pix-fmt", "yuv444p", "-o", tmp_path / "t.mkv")
    assert result.returncode == 0 and (probe(tmp_path / "t.mkv").width, probe(tmp_path / "t.mkv").height) == (32, 24)
    clip = synthetic_clip(tmp_path / "three.mp4", SIZE, "25", seconds=3)
    late = cli("upscale-video", clip, "--start", "10", "-o", tmp_path / "late.mp4")
    assert late.returncode == 1 and "--start 10 is past the end of the video (3.0 s)" in late.stderr
    wide = tmp_path / "wide.mp4"  # pixels twice as tall as wide, then shown turned a quarter
    make = [ffmpeg_exe(), "-v", "error", "-f", "lavfi", "-i", f"testsrc2=size={SIZE}:rate=25", "-t", "0.2"]
    subprocess.run([*make, "-vf", "setsar=1/2", "-c:v", "libx264", "-pix_fmt", "yuv420p", str(wide)], check=True)
    turned = tmp_path / "turned.mp4"
    subprocess.run([ffmpeg_exe(), "-v", "error", "-display_rotation", "90", "-i", str(wide), "-c", "copy", str(turned)])
    assert probe(wide).sar == "1:2" and probe(turned).sar == "2:1"
    out = tmp_path / "up.mp4"
    assert cli("upscale-video", turned, "-m", "repsr-tiny-x4", "-o", out, "--preset", "ultrafast").returncode == 0
    assert probe(out).sar == "2:1"
