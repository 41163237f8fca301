"""PSNR and SSIM as SR papers report them: Y channel (BT.601, 16-235), `scale` pixels cropped per border.

SSIM follows Wang et al. (2004) as in their MATLAB `ssim_index`: 11x11 Gaussian window, sigma 1.5,
K1 = 0.01, K2 = 0.03, L = 255, 'valid' filtering, mean of the SSIM map.
"""

from __future__ import annotations

import math

import numpy as np
import torch
import torch.nn.functional as F


def rgb_to_y(img: np.ndarray) -> np.ndarray:
    """Luma of an HxWx3 uint8 (or 0-255 float) RGB image, in [16, 235], as float64 (MATLAB rgb2ycbcr)."""
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


def _gaussian_window(size: int = 11, sigma: float = 1.5) -> torch.Tensor:
    x = torch.arange(size, dtype=torch.float64) - (size - 1) / 2
    g = torch.exp(-(x**2) / (2 * sigma**2))
    g /= g.sum()
    return torch.outer(g, g)[None, None]


def ssim_y(sr: np.ndarray, hr: np.ndarray, border: int) -> float:
    a = torch.from_numpy(_crop(rgb_to_y(sr), border).copy())[None, None]
    b = torch.from_numpy(_crop(rgb_to_y(hr), border).copy())[None, None]
    win = _gaussian_window()
    c1, c2 = (0.01 * 255) ** 2, (0.03 * 255) ** 2
    mu_a, mu_b = F.conv2d(a, win), F.conv2d(b, win)
    var_a = F.conv2d(a * a, win) - mu_a**2
    var_b = F.conv2d(b * b, win) - mu_b**2
    cov = F.conv2d(a * b, win) - mu_a * mu_b
    ssim_map = ((2 * mu_a * mu_b + c1) * (2 * cov + c2)) / ((mu_a**2 + mu_b**2 + c1) * (var_a + var_b + c2))
    return float(ssim_map.mean())
