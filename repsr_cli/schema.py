"""The tables that the CLI exposes and the code obeys: model sizes, block types, training choices, image files.

Data only and torch-free, so `repsr --help` lists the same choices the code accepts without loading torch.
Each table has this one home; the modules that act on a name (model/blocks.py, train/trainer.py, infer/)
look it up here, and model/blocks.py checks that its registry covers BLOCK_NAMES.
"""

from __future__ import annotations

# Model sizes: name -> (blocks, channels).
MODEL_SIZES: dict[str, tuple[int, int]] = {"tiny": (4, 16), "small": (10, 32), "base": (16, 64)}

# Training-time block types (model/blocks.py); each folds into one 3x3 conv.
BLOCK_NAMES = ("repsr", "ecb", "acb", "repvgg", "dbb", "plain")

# RepSR's BatchNorm: mini-batch then population statistics (the switch), mini-batch only, or no BN.
BN_MODES = ("switch", "batch", "none")

SCHEDULES = ("cosine", "multistep", "constant")

# Image files: extension -> Pillow format, for reading and writing.
IMAGE_FORMATS = {
    ".png": "PNG",
    ".jpg": "JPEG",
    ".jpeg": "JPEG",
    ".webp": "WEBP",
    ".tif": "TIFF",
    ".tiff": "TIFF",
    ".bmp": "BMP",
}
# Read, never written (an output of one of these is a PNG): GIF is a palette of 256 colours, AVIF we do not encode.
READ_ONLY_FORMATS = {".gif": "GIF", ".avif": "AVIF"}
IMAGE_SUFFIXES = tuple(IMAGE_FORMATS) + tuple(READ_ONLY_FORMATS)
VIDEO_SUFFIXES = (".mp4", ".mkv", ".mov", ".webm", ".avi", ".m4v", ".ts", ".mts", ".wmv", ".flv")
OUTPUT_FORMATS = ("png", "jpg", "webp", "tiff", "bmp")  # --format names

DEPLOY_FORMATS = ("safetensors", "pth")  # deploy weights: ours, and Real-ESRGAN's `params_ema` .pth
EXPORT_FORMATS = ("onnx", "ncnn")  # for other runtimes (formats/exports.py)
ALPHA_MODES = ("bicubic", "model")  # how an alpha channel is upscaled


def size_name(channels: int, blocks: int) -> str | None:
    return next((n for n, (b, c) in MODEL_SIZES.items() if (b, c) == (blocks, channels)), None)


def choices(names: object) -> str:
    """'a, b or c' for help texts and error messages."""
    names = list(names)
    return names[0] if len(names) == 1 else f"{', '.join(names[:-1])} or {names[-1]}"


def number_text(value: float) -> str:
    """A user's number as names and messages show it: every digit it has (0.1234561 and 0.1234564 stay two
    names), no exponent or trailing zeros for everyday values, and -0 as 0."""
    return format(value + 0.0, ".15g")
