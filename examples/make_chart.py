"""Draw the example test chart and its x4 MATLAB-bicubic downscale (both committed as small PNGs).

Everything is synthetic: a zone plate (aliasing), fine text, hard edges at several angles, and smooth
gradients (banding). Run: python examples/make_chart.py
"""

from __future__ import annotations

from pathlib import Path

import numpy as np
from PIL import Image, ImageDraw, ImageFont

from repsr_cli.data.resize import downscale

HERE = Path(__file__).parent
WIDTH, HEIGHT = 512, 384


def zone_plate(size: int) -> np.ndarray:
    y, x = np.mgrid[-1 : 1 : size * 1j, -1 : 1 : size * 1j]
    return 0.5 + 0.5 * np.cos(np.pi * size / 6 * (x * x + y * y))


def chart() -> Image.Image:
    img = Image.new("RGB", (WIDTH, HEIGHT), (235, 235, 235))
    zp = (zone_plate(192) * 255).astype(np.uint8)
    img.paste(Image.fromarray(zp).convert("RGB"), (8, 8))
    # Colour gradients: smooth ramps show banding and colour shifts.
    ramp = np.linspace(0, 1, 296)[None, :, None]
    colors = np.array([[1.0, 0.2, 0.1], [0.1, 0.7, 0.2], [0.15, 0.3, 1.0]])[:, None, :]
    bands = np.repeat((ramp * colors * 255).astype(np.uint8), 20, axis=0)
    img.paste(Image.fromarray(bands), (208, 8))
    draw = ImageDraw.Draw(img)
    # Edges at several angles: a star of black wedges.
    cx, cy, r = 300, 150, 80
    for k in range(0, 36, 2):
        a0, a1 = np.deg2rad(k * 10), np.deg2rad((k + 1) * 10)
        draw.polygon(
            [(cx, cy), (cx + r * np.cos(a0), cy + r * np.sin(a0)), (cx + r * np.cos(a1), cy + r * np.sin(a1))],
            fill=(20, 20, 20),
        )
    # Fine text at several sizes.
    y = 210
    for size in (10, 14, 20, 28):
        font = ImageFont.load_default(size=size)
        draw.text((12, y), f"{size}px: quick brown fox 0123", fill=(10, 10, 60), font=font)
        y += size + 8
    # Thin lines converging: resolution wedge.
    for i in range(12):
        draw.line([(400, 80 + i * 6), (505, 80 + i * 2)], fill=(0, 0, 0), width=1)
    draw.rectangle([400, 230, 500, 370], outline=(200, 30, 30), width=3)
    draw.ellipse([415, 250, 485, 350], fill=(30, 90, 200))
    return img


def main() -> None:
    hr = np.asarray(chart())
    Image.fromarray(hr).save(HERE / "chart.png", optimize=True)
    Image.fromarray(downscale(hr, 4)).save(HERE / "chart_lr.png", optimize=True)
    print(f"wrote {HERE / 'chart.png'} and {HERE / 'chart_lr.png'}")


if __name__ == "__main__":
    main()
