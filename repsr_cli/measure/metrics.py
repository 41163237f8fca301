"""PSNR and SSIM as SR papers report them: Y channel (BT.601, 16-235), `scale` pixels cropped per border.

SSIM follows Wang et al. (2004) as in their MATLAB `ssim_index`: 11x11 Gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the SSIM map.
"""

from __future__ import annotations

import math

import numpy as np


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma of an HxWx3 uint8 (or 0-255 float) RGB image, in [16, 235], as float64 (MATLAB rgb2ycbcr); a grey
    image (HxW or HxWx1) is its own R, G and B."""
    if img.ndim == 3 and img.shape[2] == 1:
        img = img[..., 0]
    if img.ndim == 2:
        img = np.repeat(img[..., None], 3, axis=2)
    rgb = img[..., :3].astype(np.float64) / 255.0
    return 16.0 + 65.481 * rgb[..., 0] + 128.553 * rgb[..., 1] + 24.966 * rgb[..., 2]


def _crop(img: np.ndarray, border: int) -> np.ndarray:
    return img[border:-border, border:-border] if border > 0 else img


def psnr_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a, b = _crop(rgb_to_y(sr), border), _crop(rgb_to_y(hr), border)
    mse = float(np.mean((a - b) ** 2))
    return math.inf if mse == 0 else 10 * math.log10(255.0**2 / mse)


def _gaussian_1d(size: int = 11, sigma: float = 1.5) -> np.ndarray:
    x = np.arange(size, dtype=np.float64) - (size - 1) / 2
    g = np.exp(-(x**2) / (2 * sigma**2))
    return g / g.sum()


def _filter(maps: np.ndarray) -> np.ndarray:
    """'valid' filtering of ...xHxW maps with the 11x11 Gaussian, as two 1-D passes (it is separable)."""
    g = _gaussian_1d()
    k = len(g)
    rows = sum(g[i] * maps[..., i : maps.shape[-2] - k + 1 + i, :] for i in range(k))
    return sum(g[i] * rows[..., i : rows.shape[-1] - k + 1 + i] for i in range(k))


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a, b = _crop(rgb_to_y(sr), border), _crop(rgb_to_y(hr), border)
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b, aa, bb, ab = _filter(np.stack([a, b, a * a, b * b, a * b]))
    var_a, var_b, cov = aa - mu_a**2, bb - mu_b**2, ab - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())


def _box_blur(img: np.ndarray, radius: int) -> np.ndarray:
    """Mean over a (2r+1)^2 window, edges replicated, by an integral image."""
    k = 2 * radius + 1
    summed = np.pad(np.pad(img, radius, mode="edge").cumsum(0).cumsum(1), ((1, 0), (1, 0)))
    window = summed[k:, k:] - summed[:-k, k:] - summed[k:, :-k] + summed[:-k, :-k]
    return window / (k * k)


def phase_grid_score(img: np.ndarray, scale: int) -> float:
    """How much of the detail layer sits on the s x s pixel grid of a x`scale` output (a PixelShuffle
        checkerboard): the Y channel's high-pass residual (Y minus its (2s+1)-box blur) averaged on each of the
        s*s phases, the spread of those means divided by the residual's spread. An image without a grid scores near
    0 (on small images sampling noise leaves a little): score the HR of the same images for the reference."""
    y = rgb_to_y(img)
    h, w = y.shape[0] - y.shape[0] % scale, y.shape[1] - y.shape[1] % scale
    residual = (y - _box_blur(y, scale))[:h, :w]
    means = residual.reshape(h // scale, scale, w // scale, scale).mean(axis=(0, 2))
    spread = residual.std()
    return float(means.std() / spread) if spread > 0 else 0.0


def edge_energy(img: np.ndarray, border: int = 0) -> float:
    """Mean gradient magnitude of Y (forward differences): how much edge contrast an image carries. Divided by
    the HR image's, it says how much of the original sharpness an upscale restores."""
    y = _crop(rgb_to_y(img), border)
    dy, dx = np.diff(y, axis=0)[:, :-1], np.diff(y, axis=1)[:-1, :]
    return float(np.sqrt(dx * dx + dy * dy).mean())


def _local_extremes(y: np.ndarray, radius: int) -> tuple[np.ndarray, np.ndarray]:
    """Minimum and maximum over the (2r+1)^2 window around each pixel (edges replicated), separably."""
    k = 2 * radius + 1
    padded = np.pad(y, radius, mode="edge")
    rows = np.lib.stride_tricks.sliding_window_view(padded, k, axis=0)
    lo, hi = rows.min(axis=-1), rows.max(axis=-1)
    lo = np.lib.stride_tricks.sliding_window_view(lo, k, axis=1).min(axis=-1)
    hi = np.lib.stride_tricks.sliding_window_view(hi, k, axis=1).max(axis=-1)
    return lo, hi


HALO_TOLERANCE = 8.0  # luma levels (of 0-255) an output may stray outside the HR's local range unnoticed


def halo_share(sr: np.ndarray, hr: np.ndarray, scale: int, tolerance: float = HALO_TOLERANCE) -> float:
    """Share of output pixels whose luma lies more than `tolerance` levels outside the HR's own minimum-maximum
    over the (2s+1)^2 window around that pixel: ringing and overshoot beside edges, and texture invented where
    the HR is flat. The HR scores 0; a sharp edge in the right place scores nothing, a halo beside it does.
    Border `scale` pixels are cropped as for PSNR."""
    a, b = _crop(rgb_to_y(sr), scale), _crop(rgb_to_y(hr), scale)
    # rgb_to_y gives 16-235 luma: scale back to 0-255 levels so the tolerance reads as 8-bit grey levels
    a, b = (a - 16.0) * (255 / 219), (b - 16.0) * (255 / 219)
    lo, hi = _local_extremes(b, scale)
    return float(((a > hi + tolerance) | (a < lo - tolerance)).mean())
