"""Training checkpoint -> deploy weights, with a numerical check that the fold is exact; any model -> ONNX or
ncnn for other runtimes, checked against our forward where the runtime is installed."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import torch

from ..errors import UserError
from ..formats.checkpoint import check_fields, checkpoint_warning, is_checkpoint, model_from_checkpoint
from ..formats.deploy import save_deploy
from ..formats.files import check_output, read_torch_file
from ..model import fuse
from ..schema import DEPLOY_FORMATS, EXPORT_FORMATS, choices


@dataclass
class ConvertResult:
    output: Path
    max_abs_diff: float
    scale: int
    channels: int
    blocks: int
    warning: str | None = None  # from the checkpoint: stopped before its BN switch, or scored below bicubic


def default_output(ckpt: Path, fmt: str) -> Path:
    return Path(ckpt).with_suffix(".safetensors" if fmt == "safetensors" else ".deploy.pth")


def export_name(source: Path, scale: int) -> str:
    """A checkpoint's export is named after its run (`runs/x4/checkpoints/last.pth` -> `x4`), and every export
    ends in its scale (`-x4`) unless its name already does."""
    name = (
        source.parent.parent.name if source.parent.name == "checkpoints" and source.parent.parent.name else source.stem
    )
    return name if name.endswith(f"-x{scale}") else f"{name}-x{scale}"


def convert(
    ckpt_path: Path, output: Path | None = None, fmt: str = "safetensors", overwrite: bool = False
) -> ConvertResult:
    from .weights import available_models

    ckpt_path = Path(ckpt_path)
    if fmt not in DEPLOY_FORMATS:
        raise UserError(f"unknown --format {fmt!r} (use {choices(DEPLOY_FORMATS + EXPORT_FORMATS)})")
    if not ckpt_path.exists() and str(ckpt_path) in {e.name for e in available_models()}:
        raise UserError("is a deploy model already: nothing to fuse (--format onnx or ncnn exports it)", ckpt_path)
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
    check_fields(obj, ckpt_path)
    net = model_from_checkpoint(obj, ckpt_path).eval()
    deploy = fuse(net)
    bad = [k for k, v in deploy.state_dict().items() if not torch.isfinite(v).all()]
    if bad:
        raise UserError(f"the fused weights hold NaN or infinite values ({bad[0]}): the run diverged", ckpt_path)
    output = Path(output) if output is not None else default_output(ckpt_path, fmt)
    expected = ".safetensors" if fmt == "safetensors" else ".pth"
    check_output(output, overwrite, ckpt_path, example=default_output(ckpt_path, fmt).name)
    if output.suffix.lower() != expected:
        raise UserError(f"--format {fmt} writes a {expected} file; name the output so, or choose the format", output)
    generator = torch.Generator().manual_seed(0)
    x = torch.rand(1, 3, 32, 32, generator=generator)
    with torch.no_grad():
        diff = float((net(x) - deploy(x)).abs().max())
    try:
        save_deploy(deploy, output, fmt, iterations=str(obj.get("iter", "")))
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or exc})", output) from None
    cfg = deploy.cfg
    return ConvertResult(output, diff, cfg.scale, cfg.channels, cfg.blocks, checkpoint_warning(obj))


def export(
    model: str, output: Path | None = None, fmt: str = "onnx", half: bool = False, overwrite: bool = False
) -> ConvertResult:
    """Any model `upscale -m` takes -> ONNX (`NAME.onnx`) or ncnn (`NAME.param` + `NAME.bin`)."""
    from ..formats.exports import write_ncnn, write_onnx
    from .weights import load_plain, resolve_model_path

    if fmt not in EXPORT_FORMATS:
        raise UserError(f"unknown --format {fmt!r} (use {choices(DEPLOY_FORMATS + EXPORT_FORMATS)})")
    if half and fmt != "onnx":
        raise UserError("--half is for ONNX; ncnn models store their weights as float16 already")
    net = load_plain(model)
    source = resolve_model_path(model)
    suffix = ".onnx" if fmt == "onnx" else ".param"
    if output is None:  # named with the scale, as Upscayl's model list and realesrgan-ncnn-vulkan want (NAME-xS)
        output = (source.parent if Path(model).exists() else Path()) / f"{export_name(source, net.scale)}{suffix}"
    check_output(Path(output), overwrite=True, example=f"{source.stem}{suffix}")  # the name as given
    output = Path(output) if Path(output).suffix == suffix else Path(output).with_suffix(suffix)
    for target in [output] if fmt == "onnx" else [output, output.with_suffix(".bin")]:
        check_output(target, overwrite, source)
    try:
        if fmt == "onnx":
            write_onnx(net, output, half, source=source.name)
        else:
            write_ncnn(net, output, output.with_suffix(".bin"))
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or exc})", output) from None
    return ConvertResult(output, 0.0, *net.shape)
