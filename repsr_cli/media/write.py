"""Image files out: every common format, metadata carried, atomic writes, one-line errors.

PNG is written by png.py, so 16-bit images stay 16-bit end to end (they are read by read.py).
"""

from __future__ import annotations

import os
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image

from .. import __version__
from ..errors import UserError
from ..formats.files import atomic_write
from ..schema import IMAGE_FORMATS, OUTPUT_FORMATS, choices
from .png import write_png
from .read import BMP_MARKER, EXIF_SOFTWARE, OUTPUT_MARKER, ImageFile, to_uint8

JPEG_EXIF_LIMIT = 65_533  # bytes in one APP1 segment (a 16-bit length that counts itself)
MAX_SIDE = {"JPEG": 65_535, "WEBP": 16_383, "PNG": 2**31 - 1, "TIFF": 2**31 - 1, "BMP": 2**31 - 1}  # format limits


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
        software=f"{OUTPUT_MARKER} {__version__}",  # the marker folder scans look for (images.is_our_output)
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


def fitting_icc(icc: bytes | None, channels: int) -> tuple[bytes | None, list[str]]:
    """The input's ICC profile when it describes the output's colour space (bytes 16-19 of the profile
    header: 'RGB ' or 'GRAY'); a CMYK input's profile would make RGB pixels read as ink."""
    if not icc:
        return None, []
    want = b"GRAY" if channels in (1, 2) else b"RGB "
    space = icc[16:20]
    if space == want:
        return icc, []
    described = space.decode("ascii", "replace").strip() or "an unknown space"
    output = "grey" if want == b"GRAY" else "RGB"
    return None, [f"ICC profile not carried: it describes {described}, the output is {output}"]


def output_exif(exif: bytes | None, fmt: str) -> tuple[bytes | None, list[str]]:
    """The carried EXIF with our output marker as its Software tag (BMP holds none), and a note for each
    thing left out: an EXIF block larger than a JPEG segment keeps only the marker."""
    if fmt == "BMP":
        return None, ["EXIF not carried: BMP holds no metadata"] if exif else []
    tags = Image.Exif()
    if exif:
        tags.load(exif)
    tags[EXIF_SOFTWARE] = f"{OUTPUT_MARKER} {__version__}"
    data = tags.tobytes()
    if fmt == "JPEG" and len(data) > JPEG_EXIF_LIMIT:
        marker = Image.Exif()
        marker[EXIF_SOFTWARE] = tags[EXIF_SOFTWARE]
        return marker.tobytes(), [f"EXIF not carried: {len(data):,} bytes, a JPEG holds {JPEG_EXIF_LIMIT:,}"]
    return data, []


def composite_on_white(pixels: np.ndarray) -> np.ndarray:
    """Colour (or grey) over a white background by its alpha, the last channel; same dtype."""
    peak = float(np.iinfo(pixels.dtype).max)
    alpha = pixels[..., -1:].astype(np.float64) / peak
    colour = pixels[..., :-1].astype(np.float64)
    return np.rint(colour * alpha + peak * (1 - alpha)).astype(pixels.dtype)


def write_image(image: ImageFile, path: Path, encode: EncodeOptions = EncodeOptions()) -> list[str]:
    """Write atomically; formats without alpha or 16 bits get the closest thing they can hold. Returns notes
    on metadata that could not be carried."""
    path = Path(path)
    fmt = IMAGE_FORMATS.get(path.suffix.lower())
    if fmt is None:
        raise UserError(f"unknown output format {path.suffix!r} (use {choices(OUTPUT_FORMATS)})", path)
    pixels = image.pixels
    notes: list[str] = []
    if fmt == "JPEG" and pixels.shape[2] in (2, 4):  # no alpha in JPEG: shown as viewers show it, on white
        pixels = composite_on_white(pixels)
        notes.append("alpha composited on white (JPEG holds none; write PNG, WebP, TIFF or BMP to keep it)")
    if fmt == "BMP" and pixels.shape[2] == 2:  # BMP has no grey + alpha: the grey as RGB, alpha kept
        pixels = pixels[..., [0, 0, 0, 1]]
    wide = pixels.dtype == np.uint16
    if wide and fmt not in ("PNG", "TIFF"):
        pixels, wide = to_uint8(pixels), False
    options: dict[str, object] = {}
    icc, icc_notes = fitting_icc(image.icc, pixels.shape[2])
    notes += icc_notes
    if icc:
        options["icc_profile"] = icc
    exif, exif_notes = output_exif(image.exif, fmt)
    notes += exif_notes
    if exif:
        options["exif"] = exif
    if fmt in ("JPEG", "WEBP"):
        options["quality"] = encode.quality

    def save(tmp: str) -> None:
        if fmt == "PNG":
            with open(tmp, "wb") as fh, ThreadPoolExecutor(os.cpu_count() or 1) as pool:
                write_png(fh, pixels, encode.png_compression, icc, exif, pool)
        elif wide and fmt == "TIFF" and pixels.shape[2] != 1:
            _save_tiff16(pixels, tmp, icc)
        else:
            array_to_pil(pixels).save(tmp, format=fmt, **options)
        if fmt == "BMP":  # BMP holds no metadata: the marker goes into its reserved header fields
            with open(tmp, "r+b") as fh:
                fh.seek(6)
                fh.write(BMP_MARKER)

    try:
        atomic_write(path, save)
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or exc})", path) from None
    return notes
