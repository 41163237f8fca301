"""Image files in and out: every common kind of image, metadata carried, atomic writes, one-line errors.

Pillow decodes most files but reads 16-bit RGB(A) PNG and TIFF as 8 bits; those are read through pypng and
tifffile, and PNG is written by png.py, so 16-bit images stay 16-bit end to end.
"""

from __future__ import annotations

import os
import struct
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError
from ..formats.files import atomic_write
from ..schema import IMAGE_FORMATS, OUTPUT_FORMATS, choices
from .png import write_png

EXIF_ORIENTATION = 0x0112
MAX_SIDE = {"JPEG": 65_535, "WEBP": 16_383, "PNG": 2**31 - 1, "TIFF": 2**31 - 1, "BMP": 2**31 - 1}  # format limits


@dataclass
class ImageFile:
    """Pixels as HxWxC (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), uint8 or uint16, plus metadata to carry."""

    pixels: np.ndarray
    icc: bytes | None = None
    exif: bytes | None = None
    lossy: bool = False  # stored with lossy compression (JPEG, lossy WebP): its artifacts are in the pixels


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def _read_png16(path: Path) -> np.ndarray:
    import png

    width, height, rows, info = png.Reader(filename=str(path)).asDirect()
    planes = info["planes"]
    return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)


def _read_tiff16(path: Path) -> np.ndarray | None:
    import tifffile

    with tifffile.TiffFile(path) as tif:
        page = tif.pages[0]
        if page.dtype != np.uint16:
            return None
        arr = page.asarray()
    return arr[..., None] if arr.ndim == 2 else arr


def pil_to_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> grey, grey+alpha, RGB or RGBA, keeping 16-bit grey as uint16."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[..., None]
    if im.mode in ("I", "F"):  # 32-bit integer or float grey: scale to 16 bits
        arr = np.asarray(im, dtype=np.float64)
        return np.clip(arr if arr.max() > 1 else arr * 65535, 0, 65535).astype(np.uint16)[..., None]
    if im.mode == "P":
        im = im.convert("RGBA" if "transparency" in im.info else "RGB")
    elif im.mode in ("1", "L"):
        im = im.convert("L")
    elif im.mode in ("LA", "La", "PA"):
        im = im.convert("LA")
    elif im.mode in ("RGBA", "RGBa"):
        im = im.convert("RGBA")
    else:  # RGB, CMYK, YCbCr, LAB, HSV, RGBX ...
        im = im.convert("RGB")
    arr = np.asarray(im)
    return arr[..., None] if arr.ndim == 2 else arr


def _webp_is_lossy(path: Path) -> bool:
    """Walk the RIFF chunks of a WebP (Google's container spec): image data in a `VP8 ` chunk is lossy,
    in `VP8L` lossless; an animation (`ANMF` frames, 16 bytes of frame header, then chunks) with any lossy
    frame counts as lossy."""
    data = Path(path).read_bytes()

    def lossy_in(start: int, end: int) -> bool:
        pos = start
        while pos + 8 <= end:
            fourcc, size = data[pos : pos + 4], int.from_bytes(data[pos + 4 : pos + 8], "little")
            if fourcc == b"VP8 " or (fourcc == b"ANMF" and lossy_in(pos + 8 + 16, min(end, pos + 8 + size))):
                return True
            pos += 8 + size + (size & 1)
        return False

    return lossy_in(12, len(data))


def read_image(path: Path) -> ImageFile:
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if path.is_dir():
        raise UserError("is a folder, not an image", path)
    if path.stat().st_size == 0:
        raise UserError("empty file", path)
    try:
        with Image.open(path) as im:
            icc = im.info.get("icc_profile")
            exif = im.getexif()
            wide = None
            if im.format == "PNG" and _png_bit_depth(path) == 16 and im.mode not in ("I;16", "I", "L", "LA"):
                wide = _read_png16(path)
            elif im.format == "TIFF" and im.mode not in ("I;16", "I;16B", "I", "F"):
                wide = _read_tiff16(path)
            orientation = exif.get(EXIF_ORIENTATION, 1)
            lossy = im.format == "JPEG" or (im.format == "WEBP" and _webp_is_lossy(path))
            if wide is not None:
                pixels = _orient(wide, orientation)
            else:
                im.load()
                pixels = pil_to_array(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise UserError(f"image too large for the safety limit ({exc}); raise it with --max-pixels", path) from None
    except UnidentifiedImageError:
        raise UserError("not an image, or a format we cannot read", path) from None
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot decode ({reason}); the file may be truncated or corrupt", path) from None
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1  # pixels are upright now
    return ImageFile(pixels, icc, exif.tobytes() if len(exif) else None, lossy)


_ORIENT = {  # EXIF orientation -> the array operation that makes the image upright (as ImageOps.exif_transpose)
    2: lambda a: a[:, ::-1],
    3: lambda a: a[::-1, ::-1],
    4: lambda a: a[::-1],
    5: lambda a: a.transpose(1, 0, 2),
    6: lambda a: np.rot90(a, -1),
    7: lambda a: a[::-1, ::-1].transpose(1, 0, 2),
    8: lambda a: np.rot90(a, 1),
}


def _orient(arr: np.ndarray, orientation: int) -> np.ndarray:
    return np.ascontiguousarray(_ORIENT.get(orientation, lambda a: a)(arr))


def array_to_pil(pixels: np.ndarray) -> Image.Image:
    channels = pixels.shape[2]
    if pixels.dtype == np.uint16:
        if channels != 1:
            raise ValueError("Pillow writes 16-bit grey only")
        return Image.fromarray(pixels[..., 0])
    mode = {1: "L", 2: "LA", 3: "RGB", 4: "RGBA"}[channels]
    return Image.fromarray(pixels[..., 0] if channels == 1 else pixels, mode)


def _save_tiff16(pixels: np.ndarray, tmp: str, icc: bytes | None) -> None:
    import tifffile

    extratags = [(34675, 7, len(icc), icc, True)] if icc else []
    photometric = "minisblack" if pixels.shape[2] in (1, 2) else "rgb"
    tifffile.imwrite(
        tmp,
        pixels,
        photometric=photometric,
        compression="zlib",
        extratags=extratags,
        extrasamples=[2] if pixels.shape[2] in (2, 4) else None,
    )


@dataclass(frozen=True)
class EncodeOptions:
    quality: int = 95  # JPEG and WebP
    # PNG zlib level; 1 (OpenCV's default too) favours speed over file size.
    png_compression: int = 1

    def __post_init__(self) -> None:
        if not 1 <= self.quality <= 100:
            raise UserError(f"--quality must be 1 to 100, got {self.quality}")
        if not 0 <= self.png_compression <= 9:
            raise UserError(f"--png-compression must be 0 to 9, got {self.png_compression}")


def check_output_size(size: tuple[int, int], path: Path) -> None:
    """Refuse an output the file format cannot hold, before any work is done."""
    fmt = IMAGE_FORMATS.get(Path(path).suffix.lower())
    limit = MAX_SIDE.get(fmt or "", 2**31 - 1)
    if max(size) > limit:
        raise UserError(f"output {size[1]}x{size[0]} exceeds the {fmt} limit of {limit} pixels per side", path)


def write_image(image: ImageFile, path: Path, encode: EncodeOptions = EncodeOptions()) -> None:
    """Write atomically; formats without alpha or 16 bits get the closest thing they can hold."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown output format {path.suffix!r} (use {choices(OUTPUT_FORMATS)})", path)
    pixels = image.pixels
    if fmt in ("JPEG", "BMP") and pixels.shape[2] in (2, 4):
        pixels = pixels[..., :-1]  # no alpha channel in these formats
    wide = pixels.dtype == np.uint16
    if wide and fmt not in ("PNG", "TIFF"):
        pixels = (pixels.astype(np.uint32) * 255 + 32767) // 65535  # to 8 bits, rounded
        pixels = pixels.astype(np.uint8)
        wide = False
    options: dict[str, object] = {}
    if image.icc:
        options["icc_profile"] = image.icc
    if image.exif and fmt in ("JPEG", "PNG", "WEBP", "TIFF"):
        options["exif"] = image.exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = encode.quality

    def save(tmp: str) -> None:
        if fmt == "PNG":
            with open(tmp, "wb") as fh, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                write_png(fh, pixels, encode.png_compression, image.icc, image.exif, pool)
        elif wide and fmt == "TIFF" and pixels.shape[2] != 1:
            _save_tiff16(pixels, tmp, image.icc)
        else:
            array_to_pil(pixels).save(tmp, format=fmt, **options)

    try:
        atomic_write(path, save)
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or exc})", path) from None
