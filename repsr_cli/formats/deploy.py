"""The deploy-weights format: a fused plain network in the state-dict layout of Real-ESRGAN's SRVGGNetCompact.

Written as safetensors (numbers only: opening an untrusted file cannot run code) or as a Real-ESRGAN `.pth`
(`params_ema`); read from those, from Real-ESRGAN's compact `.pth` files, from compact ncnn `.param`/`.bin`
pairs (Upscayl's model folder) and from our training checkpoints (fused on load).
"""

from __future__ import annotations

import re
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load_file, safe_open, save_file

from ..errors import UserError
from ..model import DeployNet, NetConfig, fuse
from ..schema import DEPLOY_FORMATS, choices, size_name
from .checkpoint import check_fields, is_checkpoint, model_from_checkpoint
from .files import atomic_write, read_torch_file

ARCHITECTURE = "SRVGGNetCompact"
FORMAT_VERSION = "1"


def deploy_metadata(net: DeployNet, **extra: str) -> dict[str, str]:
    cfg = net.cfg
    meta = {
        "architecture": ARCHITECTURE,
        "format": "repsr-deploy",
        "format_version": FORMAT_VERSION,
        "scale": str(cfg.scale),
        "channels": str(cfg.channels),
        "blocks": str(cfg.blocks),
        "activation": "prelu",
        "preset": size_name(cfg.channels, cfg.blocks) or "custom",
    }
    return {**meta, **extra}


def save_deploy(net: DeployNet, path: Path, fmt: str = "safetensors", **extra: str) -> None:
    state = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    if fmt == "safetensors":
        atomic_write(Path(path), lambda tmp: save_file(state, tmp, metadata=deploy_metadata(net, **extra)))
    elif fmt == "pth":
        # The wrapper Real-ESRGAN's inference scripts look for.
        atomic_write(Path(path), lambda tmp: torch.save({"params_ema": state}, tmp))
    else:
        raise UserError(f"unknown --format {fmt!r} (use {choices(DEPLOY_FORMATS)})")


_BODY_KEY = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def deploy_from_state_dict(state: dict[str, torch.Tensor], source: Path | str) -> DeployNet:
    """Recognise an SRVGGNetCompact state dict from its keys and shapes, and build the network."""
    layers: dict[int, dict[str, torch.Tensor]] = {}
    for key, value in state.items():
        m = _BODY_KEY.match(key) if isinstance(key, str) else None
        if m is None or not isinstance(value, torch.Tensor):
            raise UserError(f"unknown architecture: unexpected entry {key!r} for {ARCHITECTURE}", source)
        if not value.is_floating_point():  # quantised or integer weights are not numbers a float network takes
            raise UserError(f"tensor {key!r} holds {value.dtype} values; repsr reads float weights only", source)
        layers.setdefault(int(m.group(1)), {})[m.group(2)] = value
    for i, layer in sorted(layers.items()):
        if "weight" not in layer:
            raise UserError(f"{ARCHITECTURE} weights incomplete: body.{i}.weight is missing", source)
    convs = [i for i in sorted(layers) if layers[i]["weight"].ndim == 4]
    for i in convs:
        if "bias" not in layers[i]:
            raise UserError(f"{ARCHITECTURE} weights incomplete: body.{i}.bias is missing", source)
    if len(convs) < 2 or convs != list(range(0, 2 * len(convs) - 1, 2)):
        raise UserError(f"unknown architecture: body layers {sorted(layers)} are not {ARCHITECTURE}'s", source)
    first, last = layers[convs[0]]["weight"], layers[convs[-1]]["weight"]
    channels, out_ch = first.shape[0], last.shape[0]
    scale = round((out_ch / 3) ** 0.5)
    if first.shape[1] != 3 or 3 * scale * scale != out_ch:
        raise UserError(f"unknown architecture: conv shapes {tuple(first.shape)} ... {tuple(last.shape)}", source)
    acts = [i for i in sorted(layers) if i % 2 == 1]
    if acts != list(range(1, convs[-1], 2)):
        raise UserError("unsupported activation: only PReLU compact models are supported", source)
    net = DeployNet(NetConfig(scale=scale, channels=channels, blocks=len(convs) - 2))
    try:
        net.load_state_dict({k: v.float() for k, v in state.items()})
    except RuntimeError as exc:
        raise UserError(f"weights do not fit {ARCHITECTURE}: {str(exc).splitlines()[-1].strip()}", source) from None
    return net.eval()


def _read_safetensors(path: Path) -> DeployNet:
    try:
        with safe_open(str(path), framework="pt") as f:
            meta = f.metadata() or {}
        state = load_file(str(path))
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"not a readable safetensors file (corrupt or truncated?): {exc}", path) from None
    net = deploy_from_state_dict(state, path)
    if meta.get("architecture", ARCHITECTURE) != ARCHITECTURE:
        raise UserError(f"unknown architecture {meta['architecture']!r}", path)
    if "scale" in meta and meta["scale"] != str(net.cfg.scale):
        raise UserError(f"metadata says scale {meta['scale']} but the weights are x{net.cfg.scale}", path)
    return net


def _read_pth(path: Path) -> DeployNet:
    obj = read_torch_file(path)
    if is_checkpoint(obj):
        check_fields(obj, path)
        return fuse(model_from_checkpoint(obj, path).eval())
    if isinstance(obj, dict):
        for wrapper in ("params_ema", "params"):
            if isinstance(obj.get(wrapper), dict):
                return deploy_from_state_dict(obj[wrapper], path)
        if obj and all(isinstance(k, str) for k in obj):
            return deploy_from_state_dict(obj, path)
    raise UserError("not a model: expected a repsr checkpoint or a compact state dict", path)


def _read_ncnn(path: Path) -> DeployNet:
    from .exports import read_ncnn

    return deploy_from_state_dict({k: torch.from_numpy(v.copy()) for k, v in read_ncnn(path).items()}, path)


def read_deploy(path: Path) -> DeployNet:
    """Any model file a user can name -> the deploy network, eval mode, float32, on the CPU."""
    path = Path(path)
    readers = {".safetensors": _read_safetensors, ".param": _read_ncnn}
    return readers.get(path.suffix, _read_pth)(path)
