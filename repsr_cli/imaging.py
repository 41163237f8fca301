"""The one place that converts between arrays at the IO boundary and tensors inside.

Arrays: HxWxC uint8 (or uint16). Tensors: NCHW float32 in [0, 1].
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
import torch
from PIL import Image, UnidentifiedImageError

from .errors import UserError
from .schema import IMAGE_SUFFIXES


def find_images(root: Path, recursive: bool = True) -> list[Path]:
    """The image files below a folder (or the folder's own files only), sorted; a file is itself. The one
    folder walker of train, eval and upscale."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


def read_rgb8(path: Path) -> np.ndarray:
    """Decode any image as 8-bit RGB; a file that is not an image is a one-line UserError."""
    try:
        with Image.open(path) as im:
            return np.asarray(im.convert("RGB"))
    except FileNotFoundError:
        raise UserError("file not found", path) from None
    except Image.DecompressionBombError as exc:
        raise UserError(f"image too large for the safety limit ({exc})", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot read image ({reason})", path) from None


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
