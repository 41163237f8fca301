"""The Python API in a few lines: upscale a PIL image and a numpy array with the bundled model.

Run: python examples/api.py
"""

from pathlib import Path

import numpy as np
from PIL import Image

from repsr_cli import Upscaler

HERE = Path(__file__).parent

upscaler = Upscaler("repsr-x4", device="cpu")  # bundled weights, fused plain network

image = Image.open(HERE / "chart_lr.png")
result = upscaler.upscale(image)  # PIL in, PIL out
print(f"{image.size} -> {result.size}")

array = np.asarray(image.convert("RGB"))  # HxWx3 uint8 in, HxWx3 uint8 out
print(f"{array.shape} -> {upscaler.upscale(array).shape}")
