"""Image files in, for every command: one list of suffixes (schema.py), one folder walker, one reader.

Pillow decodes most files but reads 16-bit RGB(A) PNG and TIFF as 8 bits; those are read through pypng and
tifffile, so 16-bit images stay 16-bit. EXIF orientation is applied; a file that is not a readable image is a
one-line UserError.
"""

from __future__ import annotations

import contextlib
import logging
import struct
from dataclasses import dataclass
from pathlib import Path

import numpy as np
from PIL import Image, ImageOps, UnidentifiedImageError

from ..errors import UserError
from ..schema import IMAGE_SUFFIXES, VIDEO_SUFFIXES

EXIF_ORIENTATION = 0x0112
EXIF_SOFTWARE = 0x0131
OUTPUT_MARKER = "repsr"  # EXIF Software of every file we write (media/write.py): folder scans skip them
# BMP holds no metadata: our BMPs carry this in the file header's two reserved 16-bit fields instead, which
# readers ignore (the format says they are 0 or application-defined).
BMP_MARKER = b"rpsr"
# Tags that say how the source file itself is laid out (TIFF 6.0 baseline and extensions: size, strips, tiles,
# samples, compression, colour map, ICC, carried on its own) or how many pixels it has: true of no other file.
_LAYOUT_TAGS = frozenset(
    {256, 257, 258, 259, 262, 266, 273, 277, 278, 279, 284, 317, 320, 322, 323, 324, 325, 338, 339, 513, 514, 530,
     531, 532, 34675}
)  # fmt: skip
_EXIF_IFD, _PIXEL_DIMENSIONS = 0x8769, (0xA002, 0xA003)
# The JPEG standard's example luminance quantization table (ITU-T T.81, Annex K), which libjpeg scales by quality.
_JPEG_LUMA = np.array(
    [16, 11, 10, 16, 24, 40, 51, 61, 12, 12, 14, 19, 26, 58, 60, 55, 14, 13, 16, 24, 40, 57, 69, 56,
     14, 17, 22, 29, 51, 87, 80, 62, 18, 22, 37, 56, 68, 109, 103, 77, 24, 35, 55, 64, 81, 104, 113, 92,
     49, 64, 78, 87, 103, 121, 120, 101, 72, 92, 95, 98, 112, 100, 103, 99]
)  # fmt: skip


def find_images(root: Path, recursive: bool = True) -> list[Path]:
    """The image files below a folder (or the folder's own files only), sorted; a file is itself."""
    root = Path(root)
    if root.is_file():
        return [root]
    found = root.rglob("*") if recursive else root.glob("*")
    return sorted(p for p in found if p.suffix.lower() in IMAGE_SUFFIXES and p.is_file())


@dataclass
class ImageFile:
    """Pixels as HxWxC (C = 1 grey, 2 grey+alpha, 3 RGB, 4 RGBA), uint8 or uint16, plus metadata to carry."""

    pixels: np.ndarray
    icc: bytes | None = None
    exif: bytes | None = None
    lossy: bool = False  # stored with lossy compression (JPEG, lossy WebP): its artifacts are in the pixels
    quality: int | None = None  # JPEG quality estimated from the file's quantization table


def _png_bit_depth(path: Path) -> int | None:
    with open(path, "rb") as fh:
        head = fh.read(26)
    if head[:8] != b"\x89PNG\r\n\x1a\n" or len(head) < 26:
        return None
    return head[24]


def _read_png16(path: Path) -> np.ndarray:
    import png

    try:
        width, height, rows, info = png.Reader(filename=str(path)).asDirect()
        planes = info["planes"]
        return np.vstack([np.asarray(r, dtype=np.uint16) for r in rows]).reshape(height, width, planes)
    except png.Error as exc:  # a bad CRC, a truncated chunk: pypng's own exceptions
        raise ValueError(str(exc)) from None


def _read_tiff16(path: Path) -> np.ndarray | None:
    """16-bit and float TIFFs, which Pillow reads as 8 bits or not at all: uint16, float scaled from [0, 1]
    (values outside clipped), CMYK converted to RGB as Pillow converts 8-bit CMYK. None: Pillow reads it."""
    import tifffile

    logging.getLogger("tifffile").setLevel(logging.ERROR)  # its warnings would be a second line per bad file
    with tifffile.TiffFile(path) as tif:
        if not len(tif.pages):
            raise ValueError("a TIFF with no image in it")
        page = tif.pages[0]
        if page.dtype != np.uint16 and page.dtype.kind != "f":
            return None
        arr = page.asarray()
        if page.axes.startswith("S") and arr.ndim == 3:  # planar (one plane per sample): interleave
            arr = np.moveaxis(arr, 0, -1)
        cmyk = page.photometric == tifffile.PHOTOMETRIC.SEPARATED
    if arr.dtype.kind == "f":
        arr = np.round(np.clip(np.nan_to_num(arr.astype(np.float64)), 0, 1) * 65535).astype(np.uint16)
    arr = arr[..., None] if arr.ndim == 2 else arr
    if cmyk and arr.shape[2] >= 4:
        ink = arr[..., :4].astype(np.float64) / 65535
        arr = np.round((1 - ink[..., :3]) * (1 - ink[..., 3:4]) * 65535).astype(np.uint16)
    return arr


def _bmp_has_alpha(path: Path) -> bool:
    """A 32-bit BI_RGB BMP whose fourth byte is not all zero: that byte is alpha (as browsers read it),
    which Pillow drops."""
    with open(path, "rb") as fh:
        head = fh.read(54)
    if len(head) < 54 or head[:2] != b"BM":
        return False
    bpp, compression = struct.unpack_from("<HI", head, 28)
    return bpp == 32 and compression == 0 and bool(_read_bmp32(path)[..., 3].any())


def _read_bmp32(path: Path) -> np.ndarray:
    data = Path(path).read_bytes()
    offset, width, height = struct.unpack_from("<I", data, 10)[0], *struct.unpack_from("<ii", data, 18)
    rows = np.frombuffer(data, np.uint8, count=abs(height) * width * 4, offset=offset).reshape(abs(height), width, 4)
    rgba = rows[..., [2, 1, 0, 3]]  # stored BGRA
    return np.ascontiguousarray(rgba if height < 0 else rgba[::-1])  # bottom-up unless the height is negative


def pil_to_array(im: Image.Image) -> np.ndarray:
    """Any Pillow mode -> grey, grey+alpha, RGB or RGBA, keeping 16-bit grey as uint16."""
    if im.mode in ("I;16", "I;16B", "I;16L", "I;16N"):
        return np.asarray(im, dtype=np.uint16)[..., None]
    if im.mode == "I":  # 32-bit integer grey: counts, as 16-bit ones
        return np.clip(np.asarray(im, dtype=np.int64), 0, 65535).astype(np.uint16)[..., None]
    if im.mode == "F":  # float grey: nominally [0, 1], values outside clipped
        arr = np.nan_to_num(np.asarray(im, dtype=np.float64))
        return np.round(np.clip(arr, 0, 1) * 65535).astype(np.uint16)[..., None]
    if im.mode in ("P", "RGB") and "transparency" in im.info:  # tRNS: a colour that means transparent
        im = im.convert("RGBA")
    elif im.mode == "L" and "transparency" in im.info:
        im = im.convert("LA")
    elif im.mode == "P":
        im = im.convert("RGB")
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


def _luma_table(quality: int) -> np.ndarray:
    """libjpeg's quality scaling of the standard table (jcparam.c's jpeg_quality_scaling)."""
    scale = 5000 // quality if quality < 50 else 200 - 2 * quality
    return np.clip((_JPEG_LUMA * scale + 50) // 100, 1, 255)


def jpeg_quality(im: Image.Image) -> int | None:
    """The libjpeg quality (1-100) whose luminance table is nearest the file's; None without tables. Exact for
    files libjpeg made (Pillow, most software); the nearest match for encoders with tables of their own."""
    tables = getattr(im, "quantization", None) or {}
    if 0 not in tables or len(tables[0]) != 64:
        return None
    luma = np.sort(np.asarray(tables[0], dtype=np.int64))  # sorted: the same whatever order the tables are in
    return min(range(1, 101), key=lambda q: int(np.abs(np.sort(_luma_table(q)) - luma).sum()))


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
        raise UserError("a symbolic link to nothing (or to itself)" if path.is_symlink() else "file not found", path)
    if path.is_dir():
        raise UserError("is a folder, not an image", path)
    if path.stat().st_size == 0:
        raise UserError("empty file", path)
    if path.suffix.lower() in VIDEO_SUFFIXES:
        raise UserError("is a video: use `repsr upscale-video` for videos", path)
    try:
        with Image.open(path) as im:
            frames = getattr(im, "n_frames", 1)
            if frames > 1:
                raise UserError(
                    f"has {frames} frames (animated or multi-page); repsr upscales single images: extract the "
                    "frames first, or give an animation to `repsr upscale-video` as a video",
                    path,
                )
            icc = im.info.get("icc_profile")
            exif = im.getexif()
            wide = None
            if im.format == "PNG" and _png_bit_depth(path) == 16 and im.mode not in ("I;16", "I", "L", "LA"):
                wide = _read_png16(path)
            elif im.format == "TIFF":  # 16-bit grey too: Pillow's I;16 transpose loses an EXIF rotation
                wide = _read_tiff16(path)
            elif im.format == "BMP" and _bmp_has_alpha(path):
                wide = _read_bmp32(path)
            orientation = exif.get(EXIF_ORIENTATION, 1)
            # AVIF is a video codec's still frame: lossy in practice, so it goes to the real model like a JPEG
            lossy = im.format in ("JPEG", "AVIF") or (im.format == "WEBP" and _webp_is_lossy(path))
            quality = jpeg_quality(im) if im.format == "JPEG" else None
            if wide is not None:
                pixels = _orient(wide, orientation)
            else:
                im.load()
                pixels = pil_to_array(ImageOps.exif_transpose(im))
    except Image.DecompressionBombError as exc:
        raise UserError(f"image too large for the safety limit ({exc}); raise it with --max-pixels", path) from None
    except UnidentifiedImageError:
        pixels = None
        if path.suffix.lower() in (".tif", ".tiff"):
            with contextlib.suppress(ValueError, OSError, struct.error, IndexError):
                pixels = _read_tiff16(path)
        if pixels is None:  # a float RGB TIFF is a TIFF that only tifffile reads
            raise UserError("not an image, or a format we cannot read", path) from None
        return ImageFile(pixels)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error) as exc:
        reason = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
        raise UserError(f"cannot decode ({reason}); the file may be truncated or corrupt", path) from None
    exif = carried_exif(exif)
    return ImageFile(pixels, icc, exif.tobytes() if len(exif) else None, lossy, quality)


def carried_exif(exif: Image.Exif) -> Image.Exif:
    """The tags that stay true of an upscaled copy: no file-layout or pixel-count tags, orientation upright."""
    for tag in _LAYOUT_TAGS & set(exif):
        del exif[tag]
    if _EXIF_IFD in exif:
        sub = exif.get_ifd(_EXIF_IFD)
        for tag in _PIXEL_DIMENSIONS:
            sub.pop(tag, None)
    if EXIF_ORIENTATION in exif:
        exif[EXIF_ORIENTATION] = 1  # pixels are upright now
    return exif


def is_our_output(path: Path) -> bool:
    """The file carries our output marker (EXIF Software, or in a BMP the reserved header fields), so a folder
    scan does not upscale it again."""
    try:
        with open(path, "rb") as fh:
            head = fh.read(10)
        if head[:2] == b"BM":
            return head[6:10] == BMP_MARKER
        with Image.open(path) as im:
            return str(im.getexif().get(EXIF_SOFTWARE, "")).startswith(OUTPUT_MARKER)
    except (OSError, SyntaxError, ValueError, EOFError, struct.error, Image.DecompressionBombError):
        return False


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


def to_uint8(pixels: np.ndarray) -> np.ndarray:
    """16-bit samples to 8 bits, rounded; 8-bit ones unchanged."""
    if pixels.dtype == np.uint8:
        return pixels
    return ((pixels.astype(np.uint32) * 255 + 32767) // 65535).astype(np.uint8)


def read_rgb8(path: Path) -> np.ndarray:
    """An image as HxWx3 uint8 RGB, for training and evaluation: grey is repeated, alpha dropped."""
    pixels = to_uint8(read_image(path).pixels)
    colour = pixels[..., :3] if pixels.shape[2] >= 3 else np.repeat(pixels[..., :1], 3, axis=2)
    return np.ascontiguousarray(colour)
