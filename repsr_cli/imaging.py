"""The one place that converts between arrays at the IO boundary and tensors inside.

Arrays: HxWxC uint8 (or uint16). Tensors: NCHW float32 in [0, 1].
"""

from __future__ import annotations

import numpy as np
import torch


def to_tensor(arr: np.ndarray) -> torch.Tensor:
    """HxWxC (or NxHxWxC) integer array -> NCHW float32 in [0, 1]."""
    peak = 65535.0 if arr.dtype == np.uint16 else 255.0
    t = torch.from_numpy(np.require(arr, requirements=["C", "W"])).float().div_(peak)
    if t.ndim == 3:
        t = t.unsqueeze(0)
    return t.permute(0, 3, 1, 2)


def to_array(t: torch.Tensor, dtype: type = np.uint8) -> np.ndarray:
    """1xCxHxW float tensor in [0, 1] -> HxWxC array, rounded and clipped."""
    peak = 65535.0 if dtype == np.uint16 else 255.0
    out = t.detach().float().clamp(0, 1).mul(peak).round()
    return out[0].permute(1, 2, 0).cpu().numpy().astype(dtype)
