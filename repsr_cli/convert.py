"""Training checkpoint -> deploy weights, with a numerical check that the fold is exact."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from .errors import UserError
from .formats.checkpoint import is_checkpoint, model_from_checkpoint
from .formats.deploy import save_deploy
from .formats.files import read_torch_file
from .model import fuse
from .schema import DEPLOY_FORMATS, choices


@dataclass
class ConvertResult:
    output: Path
    max_abs_diff: float
    scale: int
    channels: int
    blocks: int


def default_output(ckpt: Path, fmt: str) -> Path:
    return Path(ckpt).with_suffix(".safetensors" if fmt == "safetensors" else ".deploy.pth")


def convert(
    ckpt_path: Path, output: Path | None = None, fmt: str = "safetensors", overwrite: bool = False
) -> ConvertResult:
    ckpt_path = Path(ckpt_path)
    if fmt not in DEPLOY_FORMATS:
        raise UserError(f"unknown --format {fmt!r} (use {choices(DEPLOY_FORMATS)})")
    if ckpt_path.suffix == ".safetensors" and ckpt_path.exists():
        raise UserError("already fused deploy weights: nothing to convert", ckpt_path)
    obj = read_torch_file(ckpt_path)
    if not is_checkpoint(obj):
        fused = isinstance(obj, dict) and (
            "params_ema" in obj or "params" in obj or any(str(k).startswith("body.") for k in obj)
        )
        if fused:
            raise UserError("already fused deploy weights: nothing to convert", ckpt_path)
        raise UserError("not a repsr training checkpoint", ckpt_path)
    net = model_from_checkpoint(obj, ckpt_path).eval()
    deploy = fuse(net)
    output = Path(output) if output is not None else default_output(ckpt_path, fmt)
    if output.resolve() == ckpt_path.resolve():
        raise UserError("output would overwrite the checkpoint", output)
    if output.exists() and not overwrite:
        raise UserError("exists already (pass --overwrite to replace it)", output)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=generator)
    with torch.no_grad():
        diff = float((net(x) - deploy(x)).abs().max())
    save_deploy(deploy, output, fmt, iterations=str(obj.get("iter", "")))
    cfg = deploy.cfg
    return ConvertResult(output, diff, cfg.scale, cfg.channels, cfg.blocks)
