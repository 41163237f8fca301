"""The probe reads recorded `ffmpeg -i` reports of real files (tests/fixtures/ffmpeg/): each kind of source it
must understand, and today's ffmpeg still reports each file the way it was recorded."""

from __future__ import annotations

from fractions import Fraction
from pathlib import Path

import pytest

from repsr_cli.errors import UserError
from repsr_cli.infer.video.probe import Colour, Probe, parse_report

from .ffmpeg_recordings import RECIPES, make, recorded, report

STILL = dict(fps=Fraction(25), duration=0.4, pix_fmt="yuv420p", colour=Colour(), sar=None, video_index=0)
# name -> what the probe must find: (width, height) as decoded, the streams' kinds and codecs, and the rest
EXPECTED: dict[str, tuple[tuple[int, int], list[tuple[str, str]], dict]] = {
    "h264-8bit-bt709.mp4": (
        (64, 48),
        [("video", "h264"), ("audio", "aac")],
        {**STILL, "colour": Colour("tv", "bt709", "bt709", "bt709")},
    ),
    "hevc-10bit-hdr.mkv": (
        (64, 48),
        [("video", "hevc")],
        {**STILL, "pix_fmt": "yuv420p10le", "colour": Colour("tv", "bt2020nc", "bt2020", "smpte2084")},
    ),
    "rotated-90.mp4": ((48, 64), [("video", "h264")], STILL),  # ffmpeg turns the frames upright on decode
    "anamorphic.mp4": ((64, 48), [("video", "h264")], {**STILL, "sar": "32:27"}),
    # turned a quarter, the wide pixels stand up: 27:32
    "rotated-270-anamorphic.mp4": ((48, 64), [("video", "h264")], {**STILL, "sar": "27:32"}),
    # every third frame dropped: the rate reported (and kept) is the average, 7 frames in 0.4 s
    "variable-rate.mp4": ((64, 48), [("video", "h264")], {**STILL, "fps": Fraction(35, 2)}),
    "tracks.mkv": (
        (64, 48),
        [("video", "h264"), ("audio", "aac"), ("audio", "opus"), ("subtitle", "subrip"), ("subtitle", "ass")],
        {**STILL, "duration": 0.42, "colour": Colour("tv")},
    ),
    # the picture stream, not the attached PNG
    "cover-art.mp4": ((64, 48), [("video", "h264"), ("video", "png")], STILL),
}


def parsed(text: str) -> Probe:
    return parse_report(text, Path("clip"))


@pytest.mark.parametrize("name", sorted(RECIPES))
def test_recorded_reports(name: str) -> None:
    (width, height), streams, rest = EXPECTED[name]
    info = parsed(recorded(name))
    assert (info.width, info.height) == (width, height)
    assert [(s.kind, s.codec) for s in info.streams] == streams
    assert {key: getattr(info, key) for key in rest} == rest
    assert info.high_depth is (info.pix_fmt == "yuv420p10le")


def test_todays_ffmpeg_reports_what_was_recorded(tmp_path: Path) -> None:
    """Made again, every file probes as its recording does: the fixtures still describe this ffmpeg."""
    for name in RECIPES:
        make(tmp_path, name)
        assert parsed(report(tmp_path, name)) == parsed(recorded(name)), name


@pytest.mark.parametrize(
    ("text", "problem"),
    [
        ("clip: Invalid data found when processing input", "not a video ffmpeg can read"),
        ("Input #0, wav, from 'clip':\n  Stream #0:0: Audio: pcm_s16le, 44100 Hz, mono", "has no video stream"),
        ("Input #0, mp4, from 'clip':\n  Stream #0:0: Video: png, rgb24, 32x32 (attached pic)", "has no video stream"),
        ("Input #0, mp4, from 'clip':\n  Stream #0:0: Video: h264, yuv420p, 25 fps", "frame size or rate"),
    ],
)
def test_reports_without_a_usable_video_are_one_line_errors(text: str, problem: str) -> None:
    with pytest.raises(UserError, match=problem):
        parsed(text)
