"""A small streaming PNG writer for 8- and 16-bit grey, grey+alpha, RGB and RGBA, with ICC and EXIF.

Why not Pillow: its adaptive per-row filter search made PNG encoding take a third of end-to-end time for
large outputs, and it cannot write 16-bit RGB at all. Here every row uses the Up filter (vectorised in
numpy), which compresses photographic upscales about as well, and rows are compressed in bands so memory
stays flat for huge images. Format: PNG specification (W3C, 2nd ed.), chunks IHDR, iCCP, eXIf, IDAT, IEND.
"""

from __future__ import annotations

import struct
import zlib
from typing import BinaryIO

import numpy as np

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
FILTER_UP = 2
BAND_ROWS = 256


def _chunk(out: BinaryIO, kind: bytes, data: bytes) -> None:
    out.write(struct.pack(">I", len(data)) + kind + data)
    out.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _filtered(rows: np.ndarray, previous: np.ndarray) -> bytes:
    """Up-filter a band of rows (bytes per row in the last axis), each row prefixed by its filter type."""
    prior = np.concatenate([previous[None], rows[:-1]])
    diff = rows - prior  # uint8 arithmetic wraps modulo 256, as the filter requires
    return np.concatenate([np.full((len(rows), 1), FILTER_UP, np.uint8), diff], axis=1).tobytes()


def write_png(
    out: BinaryIO,
    pixels: np.ndarray,
    level: int = 1,
    icc: bytes | None = None,
    exif: bytes | None = None,
) -> None:
    """Write an HxWxC (C = 1..4) uint8 or uint16 array as PNG."""
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    out.write(SIGNATURE)
    _chunk(out, b"IHDR", struct.pack(">IIBBBBB", w, h, depth, COLOUR_TYPE[c], 0, 0, 0))
    if icc:
        _chunk(out, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        _chunk(out, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    packer = zlib.compressobj(level)
    previous = np.zeros(w * c * depth // 8, np.uint8)
    for top in range(0, h, BAND_ROWS):
        band = pixels[top : top + BAND_ROWS]
        if depth == 16:
            band = band.astype(">u2")
        rows = np.ascontiguousarray(band).view(np.uint8).reshape(len(band), -1)
        data = packer.compress(_filtered(rows, previous))
        previous = rows[-1].copy()
        if data:
            _chunk(out, b"IDAT", data)
    _chunk(out, b"IDAT", packer.flush())
    _chunk(out, b"IEND", b"")
