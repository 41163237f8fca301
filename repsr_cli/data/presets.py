"""The degradation presets of `repsr train --degradation`: ranges and probabilities as data, torch-free.

degradations.py applies them; `bicubic` (None) is the clean MATLAB-exact LR of the standard protocol.
"""

from __future__ import annotations

from dataclasses import dataclass

Range = tuple[float, float]


@dataclass(frozen=True)
class Stage:
    """One order of the degradation model: blur, resize, noise, JPEG, each with its probability."""

    blur_prob: float
    kernel_sizes: tuple[int, ...]  # odd sides, drawn uniformly
    kernel_types: dict[str, float]  # name -> probability (see KERNELS)
    sigma: Range  # Gaussian-family kernels, in HR pixels
    resize_probs: tuple[float, float, float]  # up, down, keep
    resize_range: Range  # factor relative to the stage's reference size
    noise_prob: float
    gaussian_share: float  # of the noise: Gaussian, the rest Poisson
    gaussian_sigma: Range  # on the 0-255 scale
    poisson_scale: Range
    gray_noise_prob: float
    jpeg_prob: float
    jpeg_quality: Range


@dataclass(frozen=True)
class Preset:
    """A whole pipeline. `second_prob` runs the second stage; the final step resizes to the LR size with one
    of `final_resize` (MATLAB bicubic among them, the clean downscale), then sinc and compression in random
    order; compression is JPEG, a video codec, or none, by `final_compression`."""

    first: Stage
    second: Stage | None  # None: a first-order model
    second_prob: float
    final_resize: dict[str, float]
    final_sinc_prob: float
    final_compression: dict[str, float]  # jpeg | h264 | h265 | none
    final_jpeg_quality: Range
    video_crf: Range
    clean_prob: float = 0.0  # share of patches left as the plain MATLAB-bicubic LR, nothing else
    bicubic_path_prob: float = 0.0  # share that skips both stages: MATLAB-bicubic LR, then the final step
    notes: str = ""


_GAUSSIANS = {"iso": 0.45, "aniso": 0.25, "generalized_iso": 0.12, "generalized_aniso": 0.03}
_PLATEAUS = {"plateau_iso": 0.12, "plateau_aniso": 0.03}

# Real-ESRGAN's published ranges (their options file for x4 training, as described in the paper), kept for
# comparison: heavy blur and noise aimed at a GAN-trained model of photographs of any origin.
REALESRGAN = Preset(
    first=Stage(
        blur_prob=1.0,
        kernel_sizes=tuple(range(7, 22, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS, "sinc": 0.1},
        sigma=(0.2, 3.0),
        resize_probs=(0.2, 0.7, 0.1),
        resize_range=(0.15, 1.5),
        noise_prob=1.0,
        gaussian_share=0.5,
        gaussian_sigma=(1, 30),
        poisson_scale=(0.05, 3.0),
        gray_noise_prob=0.4,
        jpeg_prob=1.0,
        jpeg_quality=(30, 95),
    ),
    second=Stage(
        blur_prob=0.8,
        kernel_sizes=tuple(range(7, 22, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS, "sinc": 0.1},
        sigma=(0.2, 1.5),
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.3, 1.2),
        noise_prob=1.0,
        gaussian_share=0.5,
        gaussian_sigma=(1, 25),
        poisson_scale=(0.05, 2.5),
        gray_noise_prob=0.4,
        jpeg_prob=1.0,
        jpeg_quality=(30, 95),
    ),
    second_prob=1.0,
    final_resize={"area": 1 / 3, "bilinear": 1 / 3, "bicubic": 1 / 3},
    final_sinc_prob=0.8,
    final_compression={"jpeg": 1.0},
    final_jpeg_quality=(30, 95),
    video_crf=(18, 32),
    notes="Real-ESRGAN's second-order model with its published ranges (arXiv 2107.10833): heavy blur, noise and "
    "resizing twice, JPEG at each stage",
)

# For heavily degraded sources (old web images, screenshots of screenshots): mild blur and noise next to
# Real-ESRGAN's, JPEG and H.264/H.265. Trained from the clean x4 and x2 models it cost 1.35 dB (x4) and 3.0 dB
# (x2) on clean Set5 within 1,000 iterations (runs/strong-x4, strong-x2 in the run history), so the default
# real models use the milder `real` below.
STRONG = Preset(
    first=Stage(
        blur_prob=0.5,
        kernel_sizes=tuple(range(7, 16, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS, "sinc": 0.1},
        sigma=(0.2, 1.6),
        resize_probs=(0.2, 0.5, 0.3),
        resize_range=(0.5, 1.5),
        noise_prob=0.5,
        gaussian_share=0.6,
        gaussian_sigma=(1, 12),
        poisson_scale=(0.05, 1.0),
        gray_noise_prob=0.4,
        jpeg_prob=0.5,
        jpeg_quality=(40, 95),
    ),
    second=Stage(
        blur_prob=0.3,
        kernel_sizes=tuple(range(7, 16, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS, "sinc": 0.1},
        sigma=(0.2, 1.0),
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.7, 1.2),
        noise_prob=0.3,
        gaussian_share=0.6,
        gaussian_sigma=(1, 6),
        poisson_scale=(0.05, 0.5),
        gray_noise_prob=0.4,
        jpeg_prob=0.5,
        jpeg_quality=(50, 95),
    ),
    second_prob=0.3,
    final_resize={"matlab": 0.4, "area": 0.3, "bilinear": 0.15, "bicubic": 0.15},
    final_sinc_prob=0.2,
    final_compression={"jpeg": 0.5, "h264": 0.25, "h265": 0.1, "none": 0.15},
    final_jpeg_quality=(30, 95),
    video_crf=(18, 34),
    clean_prob=0.1,
    notes="blur (sigma up to 1.6 HR pixels), noise (up to 12/255) and resizing, a second stage in 30%, then JPEG or "
    "H.264/H.265; 10% clean. From the clean models it cost 1.35 dB (x4) and 3.0 dB (x2) on clean Set5 within "
    "1,000 iterations",
)

# Half the patches take the clean MATLAB-bicubic downscale straight to the final compression; the rest pass
# light blur, noise and resizing first. Still too much blur and noise for a fidelity model (experiments/moderate-x4:
# clean Set5 29.88 dB after 1,000 iterations from repsr-x4, against 30.13 with `real`), so the default `real`
# below centres on compression.
MODERATE = Preset(
    first=Stage(
        blur_prob=0.3,
        kernel_sizes=tuple(range(7, 14, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS, "sinc": 0.1},
        sigma=(0.2, 1.2),
        resize_probs=(0.2, 0.5, 0.3),
        resize_range=(0.6, 1.4),
        noise_prob=0.3,
        gaussian_share=0.6,
        gaussian_sigma=(1, 8),
        poisson_scale=(0.05, 0.5),
        gray_noise_prob=0.4,
        jpeg_prob=0.3,
        jpeg_quality=(50, 95),
    ),
    second=Stage(
        blur_prob=0.2,
        kernel_sizes=tuple(range(7, 14, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS, "sinc": 0.1},
        sigma=(0.2, 0.8),
        resize_probs=(0.3, 0.4, 0.3),
        resize_range=(0.8, 1.2),
        noise_prob=0.2,
        gaussian_share=0.6,
        gaussian_sigma=(1, 5),
        poisson_scale=(0.05, 0.3),
        gray_noise_prob=0.4,
        jpeg_prob=0.3,
        jpeg_quality=(60, 95),
    ),
    second_prob=0.2,
    final_resize={"matlab": 0.5, "area": 0.25, "bilinear": 0.1, "bicubic": 0.15},
    final_sinc_prob=0.1,
    final_compression={"jpeg": 0.45, "h264": 0.25, "h265": 0.1, "none": 0.2},
    final_jpeg_quality=(30, 95),
    video_crf=(18, 34),
    bicubic_path_prob=0.5,
    notes="half a clean downscale + one compression, half light blur, noise and resizing first; JPEG 45%, "
    "H.264/H.265 35%. From the clean models it cost 1.1 dB (x4) and 1.8 dB (x2) on clean Set5 within 1,000 "
    "iterations",
)

# The default real models: fidelity (L1/L2, no GAN) on what users feed an upscaler, photos that were downscaled
# well and then compressed (web and phone JPEG) and video frames. Most patches are the clean MATLAB-bicubic
# downscale followed by one compression (JPEG, H.264 or H.265 at a random quality) or none; a few pass light
# noise and blur first. A network trained for fidelity on heavy blur and noise learns to sharpen and smooth
# everything, which costs it on well-made inputs (STRONG and MODERATE above measured that).
REAL = Preset(
    first=Stage(
        blur_prob=0.3,
        kernel_sizes=tuple(range(7, 14, 2)),
        kernel_types={**_GAUSSIANS, **_PLATEAUS},
        sigma=(0.2, 1.0),
        resize_probs=(0.2, 0.4, 0.4),
        resize_range=(0.7, 1.3),
        noise_prob=0.6,
        gaussian_share=0.6,
        gaussian_sigma=(1, 6),
        poisson_scale=(0.05, 0.3),
        gray_noise_prob=0.4,
        jpeg_prob=0.2,
        jpeg_quality=(60, 95),
    ),
    second=None,
    second_prob=0.0,
    final_resize={"matlab": 0.7, "area": 0.15, "bicubic": 0.15},
    final_sinc_prob=0.0,
    final_compression={"jpeg": 0.45, "h264": 0.25, "h265": 0.1, "none": 0.2},
    final_jpeg_quality=(20, 95),
    video_crf=(18, 36),
    bicubic_path_prob=0.85,
    notes="the default real models' data: 85% a clean MATLAB-bicubic downscale + one compression (JPEG quality "
    "20-95 45%, H.264 25%, H.265 10% at CRF 18-36, none 20%), 15% light noise and blur first",
)

# `bicubic` is the clean MATLAB-exact LR of the standard protocol, made once per image (dataset.py).
DEGRADATIONS: dict[str, Preset | None] = {
    "bicubic": None,
    "real": REAL,
    "moderate": MODERATE,
    "strong": STRONG,
    "realesrgan": REALESRGAN,
}
