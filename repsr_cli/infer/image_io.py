"""Image files in and out: decode with clear errors, write atomically (temp file + rename)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError
from ..train.checkpoint import atomic_write

FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}


def read_image(path: Path) -> np.ndarray:
    """Decode to an HxWx3 uint8 RGB array, EXIF orientation applied."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if path.is_dir():
        raise UserError("is a folder, not an image", path)
    try:
        with Image.open(path) as im:
            im = ImageOps.exif_transpose(im)
            return np.asarray(im.convert("RGB"))
    except Image.DecompressionBombError as exc:
        raise UserError(f"image too large ({exc})", path) from None
    except (UnidentifiedImageError, OSError, SyntaxError, ValueError) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        if isinstance(exc, UnidentifiedImageError):
            reason = "not an image or an unsupported format"
        raise UserError(f"cannot read image: {reason}", path) from None


def write_image(arr: np.ndarray, path: Path, quality: int = 95) -> None:
    path = Path(path)
    fmt = FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown output format {path.suffix!r} (use {', '.join(sorted(set(FORMATS)))})", path)
    img = Image.fromarray(arr)
    options = {"quality": quality} if fmt in ("JPEG", "WEBP") else {}
    try:
        atomic_write(path, lambda tmp: img.save(tmp, format=fmt, **options))
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or exc})", path) from None
