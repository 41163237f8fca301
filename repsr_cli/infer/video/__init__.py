"""Video upscaling in three parts, each its own module: probe (what a file holds, from ffmpeg's report),
encoding (the ffmpeg command lines and the checks of a request), pipeline (decode -> model -> encode in
segments that a resume keeps, segments.py)."""

from .encoding import CONTAINERS, VideoOptions, check_request, check_window, frames_expected
from .pipeline import VideoReport, upscale_video
from .probe import Probe, probe

__all__ = [
    "CONTAINERS",
    "Probe",
    "VideoOptions",
    "VideoReport",
    "check_request",
    "check_window",
    "frames_expected",
    "probe",
    "upscale_video",
]
