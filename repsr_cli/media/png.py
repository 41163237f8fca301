"""A small PNG writer for 8- and 16-bit grey, grey+alpha, RGB and RGBA, with ICC and EXIF.

Why not Pillow: its adaptive per-row filter search made PNG encoding a large share of end-to-end time for
large outputs (benchmarks/upscale_speed.py), and it cannot write 16-bit RGB at all. Here every row uses
the Up filter (vectorised in numpy), which compresses photographic upscales about as well, and bands of rows
are deflated in parallel. Levels 1-3 deflate with ISA-L (python-isal), several times faster than zlib's
level 1 at a similar size; 0 and 4-9 use zlib.
Format: PNG specification (W3C, 2nd ed.), chunks IHDR, iCCP, eXIf, IDAT, IEND.
"""

from __future__ import annotations

import struct
import zlib
from concurrent.futures import Executor
from typing import BinaryIO

import numpy as np
from isal import isal_zlib

SIGNATURE = b"\x89PNG\r\n\x1a\n"
COLOUR_TYPE = {1: 0, 2: 4, 3: 2, 4: 6}  # channels -> PNG colour type
FILTER_UP = 2
BAND_ROWS = 256
ISAL_LEVELS = range(1, 4)  # ISA-L offers levels 0-3; its 0 still compresses, so zlib keeps 0 (stored)


def _chunk(out: BinaryIO, kind: bytes, data: bytes) -> None:
    out.write(struct.pack(">I", len(data)) + kind + data)
    out.write(struct.pack(">I", zlib.crc32(kind + data) & 0xFFFFFFFF))


def _filtered(rows: np.ndarray, previous: np.ndarray) -> bytes:
    """Up-filter a band of rows (bytes per row in the last axis), each row prefixed by its filter type."""
    prior = np.concatenate([previous[None], rows[:-1]])
    diff = rows - prior  # uint8 arithmetic wraps modulo 256, as the filter requires
    return np.concatenate([np.full((len(rows), 1), FILTER_UP, np.uint8), diff], axis=1).tobytes()


def _deflate_band(data: bytes, last: bool, level: int) -> bytes:
    """Raw deflate of one band, ended on a byte boundary (sync flush) so bands concatenate into one stream."""
    lib = isal_zlib if level in ISAL_LEVELS else zlib
    packer = lib.compressobj(level, lib.DEFLATED, -15)
    return packer.compress(data) + packer.flush(lib.Z_FINISH if last else lib.Z_SYNC_FLUSH)


def _bands(pixels: np.ndarray) -> list[bytes]:
    depth16 = pixels.dtype == np.uint16
    previous = np.zeros(pixels.shape[1] * pixels.shape[2] * (2 if depth16 else 1), np.uint8)
    out = []
    for top in range(0, pixels.shape[0], BAND_ROWS):
        band = pixels[top : top + BAND_ROWS]
        rows = np.ascontiguousarray(band.astype(">u2") if depth16 else band).view(np.uint8).reshape(len(band), -1)
        out.append(_filtered(rows, previous))
        previous = rows[-1].copy()
    return out


def write_png(
    out: BinaryIO,
    pixels: np.ndarray,
    level: int = 1,
    icc: bytes | None = None,
    exif: bytes | None = None,
    pool: Executor | None = None,
) -> None:
    """Write an HxWxC (C = 1..4) uint8 or uint16 array as PNG.

    Bands are deflated independently (in `pool`'s threads when given; zlib releases the GIL) and joined
    into one zlib stream, as pigz does: a zlib header, the raw deflate bands, the Adler-32 of all data.
    """
    h, w, c = pixels.shape
    depth = 16 if pixels.dtype == np.uint16 else 8
    out.write(SIGNATURE)
    _chunk(out, b"IHDR", struct.pack(">IIBBBBB", w, h, depth, COLOUR_TYPE[c], 0, 0, 0))
    if icc:
        _chunk(out, b"iCCP", b"ICC profile\x00\x00" + zlib.compress(icc))
    if exif:
        _chunk(out, b"eXIf", exif[6:] if exif.startswith(b"Exif\x00\x00") else exif)
    bands = _bands(pixels)
    lasts = [i == len(bands) - 1 for i in range(len(bands))]
    levels = [level] * len(bands)
    deflated = (pool.map if pool is not None else map)(_deflate_band, bands, lasts, levels)
    checksum = 1
    _chunk(out, b"IDAT", b"\x78\x01")  # zlib header: deflate, 32K window, no preset dictionary
    for raw, data in zip(bands, deflated, strict=True):
        checksum = zlib.adler32(raw, checksum)
        _chunk(out, b"IDAT", data)
    _chunk(out, b"IDAT", struct.pack(">I", checksum))
    _chunk(out, b"IEND", b"")
