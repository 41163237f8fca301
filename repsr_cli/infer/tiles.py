"""Exact tiling: each tile carries `radius` LR pixels of context, the network's receptive field.

A plain stack of n 3x3 convs corrupts at most n pixels next to a tile edge (zero padding there
differs from the real neighbours); outside that margin the tile computes exactly what the whole
image would, so cropping the margin leaves no seams at all.
"""

from __future__ import annotations

from collections.abc import Iterator
from dataclasses import dataclass


@dataclass(frozen=True)
class Tile:
    y0: int  # core box in LR pixels
    y1: int
    x0: int
    x1: int
    py0: int  # core box plus context, clipped to the image
    py1: int
    px0: int
    px1: int


def tiles(height: int, width: int, tile: int, radius: int) -> Iterator[Tile]:
    step = tile if tile > 0 else max(height, width)
    for y0 in range(0, height, step):
        for x0 in range(0, width, step):
            y1, x1 = min(y0 + step, height), min(x0 + step, width)
            yield Tile(
                y0,
                y1,
                x0,
                x1,
                max(0, y0 - radius),
                min(height, y1 + radius),
                max(0, x0 - radius),
                min(width, x1 + radius),
            )


def count_tiles(height: int, width: int, tile: int) -> int:
    if tile <= 0:
        return 1
    return -(-height // tile) * -(-width // tile)
