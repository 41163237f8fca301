"""The one place that converts between arrays at the IO boundary and tensors inside.

Arrays: HxWxC uint8 (or uint16). Tensors: NCHW float32 in [0, 1]. torch is imported by the functions that
take or give tensors only: the CPU engines that need none of it convert with `to_levels`.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import numpy as np

if TYPE_CHECKING:
    import torch


def peak(dtype: np.dtype | type) -> float:
    """White in an integer image type: 255 for uint8, 65535 for uint16."""
    return 65535.0 if np.dtype(dtype) == np.uint16 else 255.0


def round_to(values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Float values on an integer type's scale -> that type, rounded and clipped."""
    return np.clip(np.rint(values), 0, peak(dtype)).astype(dtype)


def to_levels(values: np.ndarray, dtype: np.dtype | type) -> np.ndarray:
    """Float32 values in [0, 1] (any layout) -> the integer type's levels, as to_array rounds them: scaled in
    float32, rounded half to even, clipped (the same levels as clamping first: the scaling is monotone)."""
    return round_to(values * np.float32(peak(dtype)), dtype)


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWxC (or NxHxWxC) integer array -> NCHW float32 in [0, 1]."""
    import torch

    t = torch.from_numpy(np.require(arr, requirements=["C", "W"])).float().div_(peak(arr.dtype))
    if t.ndim == 3:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2)


def to_array(t: torch.Tensor, dtype: type = np.uint8, scale: int = 1) -> np.ndarray:
    """1xCxHxW float tensor in [0, 1] -> HxWxC array, rounded and clipped. With `scale`, `t` holds the
    C*scale^2 sub-pixel planes a network gives before its pixel shuffle (DeployNet.subpixels), shuffled here
    after the rounding. Computed in the tensor's own memory layout: channels-last input is never transposed
    as floats. The rounding happens before the copy off the device and before the transposing copies, which
    then move a quarter of the float bytes (uint8); 16-bit images round to int32, which PyTorch's pixel
    shuffle takes (it has no uint16 kernel)."""
    import torch
    import torch.nn.functional as F

    integer = torch.uint8 if np.dtype(dtype) == np.uint8 else torch.int32
    levels = t.detach().float().clamp(0, 1).mul_(peak(dtype)).round_().to(integer)
    if scale > 1:
        levels = F.pixel_shuffle(levels, scale)
    return levels[0].permute(1, 2, 0).contiguous().cpu().numpy().astype(dtype, copy=False)
