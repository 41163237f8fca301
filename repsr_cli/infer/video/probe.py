"""What a video holds, read from the report of `ffmpeg -i` (imageio-ffmpeg ships no ffprobe).

`parse_report` is a pure function of that text, tested against recorded reports of real files
(tests/fixtures/ffmpeg/); `probe` runs ffmpeg and hands it the report.
"""

from __future__ import annotations

import re
import subprocess
from dataclasses import dataclass, field
from fractions import Fraction
from pathlib import Path

from ...errors import UserError
from ...media.ffmpeg import ffmpeg_exe, file_url

STILL_CODECS = {"png", "bmp", "tiff", "webp", "gif"}  # a stream of these beside another video is cover art
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
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if path.is_dir():
        raise UserError("is a folder, not a video", path)
    args = [ffmpeg_exe(), "-hide_banner", "-i", file_url(path)]
    report = subprocess.run(args, capture_output=True, text=True, errors="replace").stderr
    return parse_report(report, path)


def parse_report(text: str, path: Path) -> Probe:
    """The streams of `ffmpeg -i`'s report on `path` (named in errors)."""
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
