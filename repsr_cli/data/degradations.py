"""Realistic LR images: blur, resize, noise, JPEG and video codecs, for training and for evaluation.

Training follows the second-order degradation model of Real-ESRGAN (Wang et al., ICCV Workshops 2021,
arXiv 2107.10833): an HR patch goes through blur -> random resize -> noise -> JPEG twice, is resized to the LR
size, and ends with a sinc filter and compression in random order. We add H.264/H.265 round trips through
the bundled ffmpeg as one of the final compressions, since every video users upscale has been through one.
The ranges and probabilities are data: one `Preset` per name in presets.DEGRADATIONS.

Every random choice comes from the numpy Generator passed in, and every operation is deterministic on the
CPU (x264/x265 run single-threaded), so a batch stays a pure function of (seed, rank, iteration) and resume
stays exact.

Evaluation uses `LRDegradation`: one fixed, documented setting (`jpeg:50`, `h264:26`) applied to the
MATLAB-bicubic LR, sharing the JPEG and codec round trips with training.
"""

from __future__ import annotations

import io
import math
import subprocess
from dataclasses import dataclass

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image

from ..errors import UserError
from ..media.ffmpeg import CRF_MAX, ffmpeg_exe, quality_args
from ..media.tensors import to_array, to_tensor
from .presets import DEGRADATIONS, Preset, Stage
from .resize import imresize

# ---- blur kernels ------------------------------------------------------------------------------------


def _grid(size: int) -> tuple[np.ndarray, np.ndarray]:
    r = np.arange(size, dtype=np.float64) - (size - 1) / 2
    return np.meshgrid(r, r, indexing="xy")


def _mahalanobis(size: int, sigma_x: float, sigma_y: float, theta: float) -> np.ndarray:
    """Squared distance d^T C^-1 d on the kernel grid, C the covariance rotated by theta."""
    x, y = _grid(size)
    c, s = math.cos(theta), math.sin(theta)
    u, v = c * x + s * y, -s * x + c * y
    return (u / sigma_x) ** 2 + (v / sigma_y) ** 2


def _bessel_j1(x: np.ndarray) -> np.ndarray:
    """J1 by Bessel's integral (1/pi) * int_0^pi cos(t - x sin t) dt; the trapezoid rule on this periodic
    integrand is accurate far past what kernels need (|x| < 40)."""
    t = np.linspace(0, math.pi, 257)
    vals = np.cos(t[None, :] - np.asarray(x, np.float64).reshape(-1, 1) * np.sin(t)[None, :])
    integral = (vals.sum(axis=1) - 0.5 * (vals[:, 0] + vals[:, -1])) * (t[1] - t[0])
    return (integral / math.pi).reshape(np.shape(x))


def sinc_kernel(size: int, cutoff: float) -> np.ndarray:
    """Circular ideal low-pass (radians per pixel): the ringing and overshoot of sharpened, resampled images."""
    x, y = _grid(size)
    r = np.hypot(x, y)
    k = np.where(
        r == 0, cutoff**2 / (4 * math.pi), cutoff * _bessel_j1(cutoff * r) / (2 * math.pi * np.maximum(r, 1e-12))
    )
    return k / k.sum()


def random_kernel(stage: Stage, rng: np.random.Generator) -> np.ndarray:
    size = int(rng.choice(stage.kernel_sizes))
    kind = _pick(stage.kernel_types, rng)
    if kind == "sinc":
        low = math.pi / 3 if size < 13 else math.pi / 5  # Real-ESRGAN's cutoff ranges by kernel size
        return sinc_kernel(size, float(rng.uniform(low, math.pi)))
    sx = float(rng.uniform(*stage.sigma))
    aniso = kind.endswith("aniso")
    sy = float(rng.uniform(*stage.sigma)) if aniso else sx
    theta = float(rng.uniform(-math.pi, math.pi)) if aniso else 0.0
    d2 = _mahalanobis(size, sx, sy, theta)
    if kind.startswith("generalized"):
        k = np.exp(-0.5 * d2 ** float(rng.uniform(0.5, 4.0)))  # beta range as in Real-ESRGAN
    elif kind.startswith("plateau"):
        k = 1.0 / (1.0 + d2 ** float(rng.uniform(1.0, 2.0)))
    else:
        k = np.exp(-0.5 * d2)
    return k / k.sum()


def apply_kernel(img: torch.Tensor, kernel: np.ndarray) -> torch.Tensor:
    """Convolve a 1x3xHxW image with one kernel per channel, reflecting at the borders."""
    k = torch.from_numpy(kernel.astype(np.float32))[None, None].expand(3, 1, *kernel.shape)
    pad = kernel.shape[0] // 2
    if pad >= min(img.shape[-2:]):
        return img  # a kernel larger than the image: leave it (tiny patches only)
    return F.conv2d(F.pad(img, (pad,) * 4, mode="reflect"), k, groups=3)


# ---- resize, noise, compression --------------------------------------------------------------------


def _pick(table: dict[str, float], rng: np.random.Generator) -> str:
    names = list(table)
    p = np.array([table[n] for n in names], np.float64)
    return names[int(rng.choice(len(names), p=p / p.sum()))]


def resize_to(img: torch.Tensor, size: tuple[int, int], mode: str) -> torch.Tensor:
    if tuple(img.shape[-2:]) == size:
        return img
    if mode == "matlab":
        arr = img[0].permute(1, 2, 0).double().numpy()
        return torch.from_numpy(imresize(arr, size=size)).float().permute(2, 0, 1)[None]
    align = {"bilinear": False, "bicubic": False}.get(mode)
    return F.interpolate(img, size=size, mode=mode, align_corners=align)


def _random_resize(img: torch.Tensor, stage: Stage, ref: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
    direction = _pick({"up": stage.resize_probs[0], "down": stage.resize_probs[1], "keep": stage.resize_probs[2]}, rng)
    lo, hi = stage.resize_range
    factor = {"up": rng.uniform(1, max(1.0, hi)), "down": rng.uniform(lo, 1), "keep": 1.0}[direction]
    mode = _pick({"area": 1, "bilinear": 1, "bicubic": 1}, rng)
    size = (max(4, round(ref[0] * factor)), max(4, round(ref[1] * factor)))
    return resize_to(img, size, mode)


def _add_noise(img: torch.Tensor, stage: Stage, rng: np.random.Generator) -> torch.Tensor:
    gray = rng.random() < stage.gray_noise_prob
    shape = (1, 1 if gray else 3, *img.shape[-2:])
    if rng.random() < stage.gaussian_share:
        sigma = rng.uniform(*stage.gaussian_sigma) / 255.0
        noise = torch.from_numpy(rng.standard_normal(shape, dtype=np.float32) * np.float32(sigma))
    else:
        # shot noise: photon counts at 8-bit resolution, its size scaled (Real-ESRGAN's scale range)
        scale = rng.uniform(*stage.poisson_scale)
        base = img.clamp(0, 1)
        if gray:
            base = (0.299 * base[:, :1] + 0.587 * base[:, 1:2] + 0.114 * base[:, 2:3]).contiguous()
        counts = rng.poisson(base.numpy().astype(np.float64) * 255.0)
        noise = torch.from_numpy(((counts / 255.0 - base.numpy()) * scale).astype(np.float32))
    return img + noise


def jpeg(arr: np.ndarray, quality: int) -> np.ndarray:
    """Pillow JPEG round trip at its defaults (4:2:0 chroma subsampling)."""
    buf = io.BytesIO()
    Image.fromarray(arr).save(buf, format="JPEG", quality=int(quality))
    buf.seek(0)
    with Image.open(buf) as im:
        return np.asarray(im.convert("RGB"))


# codec name -> (encoder, its single-thread and quiet options, raw stream format)
CODECS = {
    "h264": ("libx264", ["-threads", "1", "-x264-params", "log-level=error"], "h264"),
    "h265": ("libx265", ["-x265-params", "log-level=error:pools=none:frame-threads=1"], "hevc"),
}


def codec_roundtrip(frames: np.ndarray, codec: str, crf: int, preset: str = "medium") -> np.ndarray:
    """Encode NxHxWx3 uint8 frames as a yuv420p clip (`codec` at `crf`) and decode them again.

    Odd sides are padded by edge replication (yuv420p needs even ones), and so are sides under 16 pixels
    (x265 writes nothing for smaller frames); the padding is cropped off again."""
    n, h, w, _ = frames.shape
    ph, pw = max(16, h + h % 2), max(16, w + w % 2)
    padded = np.pad(frames, ((0, 0), (0, ph - h), (0, pw - w), (0, 0)), mode="edge")
    exe = ffmpeg_exe()
    encoder, quiet, stream_format = CODECS[codec]
    src = ["-f", "rawvideo", "-pix_fmt", "rgb24", "-s", f"{pw}x{ph}", "-r", "25", "-i", "pipe:"]
    enc = [exe, "-v", "error", *src, "-pix_fmt", "yuv420p", *quality_args(encoder, crf, preset), *quiet]
    stream = _ffmpeg([*enc, "-f", stream_format, "pipe:"], padded.tobytes(), codec)
    dec = [exe, "-v", "error", "-f", stream_format, "-i", "pipe:", "-f", "rawvideo", "-pix_fmt", "rgb24", "pipe:"]
    raw = _ffmpeg(dec, stream, codec)
    if len(raw) != n * ph * pw * 3:
        raise RuntimeError(f"{codec} round trip returned {len(raw)} bytes for {n} frames of {pw}x{ph}")
    return np.frombuffer(raw, np.uint8).reshape(n, ph, pw, 3)[:, :h, :w].copy()


def _ffmpeg(cmd: list[str], data: bytes, codec: str) -> bytes:
    done = subprocess.run(cmd, input=data, capture_output=True, timeout=300)
    if done.returncode != 0:
        reason = done.stderr.decode(errors="replace").strip().splitlines()
        raise RuntimeError(f"ffmpeg {codec} failed: {reason[-1] if reason else done.returncode}")
    return done.stdout


# ---- the training pipeline ---------------------------------------------------------------------------


@dataclass
class Degrader:
    """Makes the LR batch (HR side / scale) for a batch of HR patches, drawing only from `rng`."""

    preset: Preset
    scale: int

    def __call__(self, hrs: list[np.ndarray], rng: np.random.Generator) -> np.ndarray:
        lrs, videos = [], []
        for hr in hrs:
            lr, compression = self._one(hr, rng)
            lrs.append(lr)
            videos.append(compression)
        # video codecs run once per batch and codec, on all frames that drew it: one ffmpeg pair, not N
        for codec in ("h264", "h265"):
            idx = [i for i, c in enumerate(videos) if c == codec]
            if idx:
                crf = int(rng.integers(self.preset.video_crf[0], self.preset.video_crf[1] + 1))
                out = codec_roundtrip(np.stack([lrs[i][0] for i in idx]), codec, crf)
                for j, i in enumerate(idx):
                    lrs[i] = (out[j], lrs[i][1])
        return np.stack([self._finish(lr, post) for lr, post in lrs])

    def _one(self, hr: np.ndarray, rng: np.random.Generator) -> tuple[tuple[np.ndarray, np.ndarray | None], str]:
        """One patch up to its final compression; returns (LR, sinc kernel to apply after it), compression."""
        p = self.preset
        h, w = hr.shape[0] // self.scale, hr.shape[1] // self.scale
        if rng.random() < p.clean_prob:
            return (imresize(hr, size=(h, w)), None), "none"
        img = to_tensor(hr)
        if rng.random() < p.bicubic_path_prob:
            img = resize_to(img, (h, w), "matlab")
        else:
            img = self._stage(img, p.first, hr.shape[:2], rng)
            if p.second is not None and rng.random() < p.second_prob:
                img = self._stage(
                    img, p.second, (round(hr.shape[0] / self.scale), round(hr.shape[1] / self.scale)), rng
                )
            img = resize_to(img, (h, w), _pick(p.final_resize, rng))
        sinc = sinc_kernel(int(rng.choice((7, 9, 11, 13, 15, 17, 19, 21))), float(rng.uniform(math.pi / 3, math.pi)))
        use_sinc = rng.random() < p.final_sinc_prob
        sinc_first = rng.random() < 0.5
        if use_sinc and sinc_first:
            img = apply_kernel(img, sinc)
        compression = _pick(p.final_compression, rng)
        lr = to_array(img)
        if compression == "jpeg":
            lr = jpeg(lr, int(rng.integers(p.final_jpeg_quality[0], p.final_jpeg_quality[1] + 1)))
        return (lr, sinc if use_sinc and not sinc_first else None), compression

    def _stage(self, img: torch.Tensor, stage: Stage, ref: tuple[int, int], rng: np.random.Generator) -> torch.Tensor:
        if rng.random() < stage.blur_prob:
            img = apply_kernel(img, random_kernel(stage, rng))
        img = _random_resize(img, stage, ref, rng)
        if rng.random() < stage.noise_prob:
            img = _add_noise(img, stage, rng)
        if rng.random() < stage.jpeg_prob:
            img = to_tensor(jpeg(to_array(img), int(rng.integers(stage.jpeg_quality[0], stage.jpeg_quality[1] + 1))))
        return img

    @staticmethod
    def _finish(lr: np.ndarray, sinc: np.ndarray | None) -> np.ndarray:
        return lr if sinc is None else to_array(apply_kernel(to_tensor(lr), sinc))


def make_degrader(name: str, scale: int) -> Degrader | None:
    """The degrader of a degradation preset, or None for the clean MATLAB-bicubic LR."""
    if name not in DEGRADATIONS:
        raise UserError(f"unknown degradation {name!r} (use {', '.join(DEGRADATIONS)})")
    preset = DEGRADATIONS[name]
    return None if preset is None else Degrader(preset, scale)


# ---- evaluation: one fixed setting ---------------------------------------------------------------------


@dataclass(frozen=True)
class LRDegradation:
    """A fixed degradation of the standard LR for `eval`: none, jpeg:Q (Pillow, 4:2:0), or h264:CRF /
    h265:CRF (one frame, yuv420p, preset medium, the bundled ffmpeg)."""

    kind: str = "none"
    level: int | None = None

    @classmethod
    def parse(cls, text: str) -> LRDegradation:
        kind, _, level = text.strip().lower().partition(":")
        if kind == "none" and not level:
            return cls()
        limits = {"jpeg": (1, 100), **{name: (0, CRF_MAX[encoder]) for name, (encoder, *_) in CODECS.items()}}
        number = level.isascii() and level.isdigit()  # str.isdigit alone takes '²', which int() refuses
        if kind not in limits or not number or not limits[kind][0] <= int(level) <= limits[kind][1]:
            choices = [f"{name}:{low}-{high}" for name, (low, high) in limits.items()]
            raise UserError(
                f"cannot read the degradation {text!r} (use none, {', '.join(choices[:-1])} or {choices[-1]})"
            )
        return cls(kind, int(level))

    @property
    def label(self) -> str:
        return self.kind if self.level is None else f"{self.kind}:{self.level}"

    def __call__(self, lr: np.ndarray) -> np.ndarray:
        if self.kind == "none":
            return lr
        if self.kind == "jpeg":
            return jpeg(lr, self.level)
        return codec_roundtrip(lr[None], self.kind, self.level)[0]
