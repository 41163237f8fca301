"""MATLAB-compatible bicubic `imresize`, so our LR images and metrics match published SR numbers.

Follows the behaviour documented for MATLAB's imresize: Keys cubic kernel with a = -0.5, the kernel
widened by 1/scale when shrinking (antialiasing), source coordinates u = x/scale + (1 - 1/scale)/2,
symmetric (mirror) border handling, one dimension at a time starting with the one shrunk most, and
uint8 inputs rounded to uint8 after each pass.
"""

from __future__ import annotations

import math
from functools import lru_cache

import numpy as np


def cubic(x: np.ndarray) -> np.ndarray:
    """Keys' cubic convolution kernel with a = -0.5."""
    ax = np.abs(x)
    ax2, ax3 = ax * ax, ax * ax * ax
    near = (1.5 * ax3 - 2.5 * ax2 + 1) * (ax <= 1)
    far = (-0.5 * ax3 + 2.5 * ax2 - 4 * ax + 2) * ((ax > 1) & (ax <= 2))
    return near + far


@lru_cache(maxsize=64)
def resize_matrix(in_len: int, out_len: int, scale: float, antialias: bool = True) -> np.ndarray:
    """The (out_len, in_len) matrix that resizes one dimension."""
    width = 4.0
    shrink = antialias and scale < 1
    if shrink:
        width /= scale
    x = np.arange(1, out_len + 1, dtype=np.float64)
    u = x / scale + 0.5 * (1 - 1 / scale)
    left = np.floor(u - width / 2)
    taps = math.ceil(width) + 2
    idx = left[:, None] + np.arange(taps)[None, :]
    dist = u[:, None] - idx
    weights = scale * cubic(scale * dist) if shrink else cubic(dist)
    weights /= weights.sum(axis=1, keepdims=True)
    # Mirror indices at the borders: 1..n, n..1 repeated (MATLAB's symmetric padding).
    mirror = np.concatenate([np.arange(in_len), np.arange(in_len)[::-1]])
    src = mirror[np.mod(idx.astype(np.int64) - 1, 2 * in_len)]
    matrix = np.zeros((out_len, in_len), dtype=np.float64)
    np.add.at(matrix, (np.repeat(np.arange(out_len), taps), src.ravel()), weights.ravel())
    matrix.setflags(write=False)
    return matrix


def _round_uint8(x: np.ndarray) -> np.ndarray:
    return np.clip(np.floor(x + 0.5), 0, 255).astype(np.uint8)


def imresize(
    img: np.ndarray,
    scale: float | None = None,
    size: tuple[int, int] | None = None,
    antialias: bool = True,
) -> np.ndarray:
    """Resize an HxW or HxWxC array by `scale` or to `size` = (height, width).

    uint8 input gives uint8 output with MATLAB's rounding between the passes; float input stays float.
    """
    if (scale is None) == (size is None):
        raise ValueError("give exactly one of scale or size")
    h, w = img.shape[:2]
    if size is None:
        size = (math.ceil(h * scale), math.ceil(w * scale))
        scales = (scale, scale)
    else:
        scales = (size[0] / h, size[1] / w)
    is_uint8 = img.dtype == np.uint8
    out = img.astype(np.float64)
    for dim in np.argsort(scales, kind="stable"):
        matrix = resize_matrix(img.shape[dim], size[dim], float(scales[dim]), antialias)
        out = np.tensordot(matrix, out, axes=([1], [dim]))
        out = np.moveaxis(out, 0, dim)
        if is_uint8:
            out = _round_uint8(out).astype(np.float64)
    return out.astype(np.uint8) if is_uint8 else out.astype(img.dtype if img.dtype.kind == "f" else np.float64)


def downscale(hr: np.ndarray, scale: int) -> np.ndarray:
    """LR image of the standard SR protocol: crop HR to a multiple of the scale, MATLAB bicubic down."""
    hr = mod_crop(hr, scale)
    return imresize(hr, size=(hr.shape[0] // scale, hr.shape[1] // scale))


def mod_crop(img: np.ndarray, scale: int) -> np.ndarray:
    h, w = img.shape[:2]
    return img[: h - h % scale, : w - w % scale]
