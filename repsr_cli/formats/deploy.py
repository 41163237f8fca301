"""The deploy-weights format: a fused plain network in the state-dict layout of Real-ESRGAN's SRVGGNetCompact.

Written as safetensors (numbers only: opening an untrusted file cannot run code) or as a Real-ESRGAN `.pth`
(`params_ema`); read from those, from Real-ESRGAN's compact `.pth` files, from compact ncnn `.param`/`.bin`
pairs (Upscayl's model folder) and from our training checkpoints (fused on load).

Files are read into a PlainNet, the weights as float32 arrays: safetensors and ncnn files without importing
torch, so an upscale on a CPU engine (infer/engines.py) starts without torch's 2 s import; `deploy_net` makes
the PyTorch module where PyTorch runs it.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
from safetensors import SafetensorError, safe_open
from safetensors.numpy import load_file

from ..errors import UserError
from ..schema import DEPLOY_FORMATS, choices, size_name
from .files import atomic_write

if TYPE_CHECKING:
    from ..model import DeployNet

ARCHITECTURE = "SRVGGNetCompact"
FORMAT_VERSION = "1"


@dataclass(frozen=True, eq=False)
class PlainNet:
    """A deploy network as numbers: `body.N.weight` / `body.N.bias` float32 arrays, convs at even N and PReLU
    slopes at odd N, as SRVGGNetCompact names them. Every engine builds its own network from this."""

    scale: int
    channels: int
    blocks: int
    state: Mapping[str, np.ndarray]

    @property
    def shape(self) -> tuple[int, int, int]:
        """(scale, channels, blocks): networks of one shape can be blended (deploy.weights.interpolate)."""
        return self.scale, self.channels, self.blocks

    @property
    def layout(self) -> str:
        return f"{self.blocks}x{self.channels} x{self.scale}"

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context each output pixel depends on, per side (one per 3x3 conv)."""
        return self.blocks + 2

    def layers(self) -> list[tuple[str, np.ndarray, np.ndarray | None]]:
        """('conv', weight, bias) and ('prelu', slopes, None) in body order."""
        out: list[tuple[str, np.ndarray, np.ndarray | None]] = []
        for i in range(2 * self.blocks + 3):
            weight = self.state[f"body.{i}.weight"]
            if i % 2 == 0:
                out.append(("conv", weight, self.state[f"body.{i}.bias"]))
            else:
                out.append(("prelu", weight, None))
        return out


def expected_shapes(scale: int, channels: int, blocks: int) -> dict[str, tuple[int, ...]]:
    """Every entry of the state dict and its shape (PReLU: one slope per channel, as DeployNet has them)."""
    shapes: dict[str, tuple[int, ...]] = {}
    convs = [(3, channels), *[(channels, channels)] * blocks, (channels, 3 * scale * scale)]
    for k, (cin, cout) in enumerate(convs):
        shapes[f"body.{2 * k}.weight"], shapes[f"body.{2 * k}.bias"] = (cout, cin, 3, 3), (cout,)
        if k < len(convs) - 1:
            shapes[f"body.{2 * k + 1}.weight"] = (channels,)
    return shapes


_BODY_KEY = re.compile(r"^body\.(\d+)\.(weight|bias)$")


def plain_from_state(state: Mapping[str, Any], source: Path | str) -> PlainNet:
    """Recognise an SRVGGNetCompact state dict (float arrays) from its keys and shapes."""
    layers: dict[int, dict[str, np.ndarray]] = {}
    for key, value in state.items():
        m = _BODY_KEY.match(key) if isinstance(key, str) else None
        if m is None or not isinstance(value, np.ndarray):
            raise UserError(f"unknown architecture: unexpected entry {key!r} for {ARCHITECTURE}", source)
        if not np.issubdtype(value.dtype, np.floating):  # quantised or integer weights: not a float network's
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
    expected = expected_shapes(scale, channels, len(convs) - 2)
    for key, value in state.items():
        if value.shape != expected.get(key):
            want = f"expected {expected[key]}" if key in expected else "where none is expected"
            raise UserError(f"weights do not fit {ARCHITECTURE}: {key} has shape {tuple(value.shape)}, {want}", source)
    arrays = {k: np.ascontiguousarray(v, dtype=np.float32) for k, v in state.items()}
    return PlainNet(scale, channels, len(convs) - 2, arrays)


def plain_of(net: DeployNet) -> PlainNet:
    """A PyTorch deploy network's weights as a PlainNet (float32 copies on the host)."""
    state = {k: v.detach().float().cpu().numpy().copy() for k, v in net.state_dict().items()}
    return PlainNet(net.cfg.scale, net.cfg.channels, net.cfg.blocks, state)


def deploy_net(plain: PlainNet) -> DeployNet:
    """The PyTorch module of a PlainNet: eval mode, float32, on the CPU."""
    import torch

    from ..model import DeployNet, NetConfig

    net = DeployNet(NetConfig(scale=plain.scale, channels=plain.channels, blocks=plain.blocks))
    net.load_state_dict({k: torch.from_numpy(np.array(v)) for k, v in plain.state.items()})
    return net.eval()


def plain_from_torch(state: Mapping[str, Any], source: Path | str) -> PlainNet:
    """A torch state dict (tensors of any float type) as a PlainNet, checked as plain_from_state checks."""
    import torch

    arrays: dict[str, Any] = {}
    for key, value in state.items():
        if isinstance(value, torch.Tensor) and not value.is_floating_point():
            kind = str(value.dtype).removeprefix("torch.")
            raise UserError(f"tensor {key!r} holds {kind} values; repsr reads float weights only", source)
        arrays[key] = value.detach().float().numpy() if isinstance(value, torch.Tensor) else value
    return plain_from_state(arrays, source)


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
    import torch
    from safetensors.torch import save_file

    state = {k: v.detach().float().contiguous().cpu() for k, v in net.state_dict().items()}
    if fmt == "safetensors":
        atomic_write(Path(path), lambda tmp: save_file(state, tmp, metadata=deploy_metadata(net, **extra)))
    elif fmt == "pth":
        # The wrapper Real-ESRGAN's inference scripts look for.
        atomic_write(Path(path), lambda tmp: torch.save({"params_ema": state}, tmp))
    else:
        raise UserError(f"unknown --format {fmt!r} (use {choices(DEPLOY_FORMATS)})")


def _read_safetensors(path: Path) -> PlainNet:
    try:
        with safe_open(str(path), framework="numpy") as f:
            meta = f.metadata() or {}
            dtypes = {f.get_slice(k).get_dtype() for k in f.keys()}  # noqa: SIM118 (safe_open is not a dict)
        if "BF16" in dtypes:  # numpy has no bfloat16: torch reads such a file
            from safetensors.torch import load_file as load_torch

            plain = plain_from_torch(load_torch(str(path)), path)
        else:
            plain = plain_from_state(load_file(str(path)), path)
    except (SafetensorError, OSError, ValueError) as exc:
        raise UserError(f"not a readable safetensors file (corrupt or truncated?): {exc}", path) from None
    if meta.get("architecture", ARCHITECTURE) != ARCHITECTURE:
        raise UserError(f"unknown architecture {meta['architecture']!r}", path)
    if "scale" in meta and meta["scale"] != str(plain.scale):
        raise UserError(f"metadata says scale {meta['scale']} but the weights are x{plain.scale}", path)
    return plain


def _read_pth(path: Path) -> PlainNet:
    from ..model import fuse
    from .checkpoint import check_fields, is_checkpoint, model_from_checkpoint
    from .files import read_torch_file

    obj = read_torch_file(path)
    if is_checkpoint(obj):
        check_fields(obj, path)
        return plain_of(fuse(model_from_checkpoint(obj, path).eval()))
    if isinstance(obj, dict):
        for wrapper in ("params_ema", "params"):
            if isinstance(obj.get(wrapper), dict):
                return plain_from_torch(obj[wrapper], path)
        if obj and all(isinstance(k, str) for k in obj):
            return plain_from_torch(obj, path)
    raise UserError("not a model: expected a repsr checkpoint or a compact state dict", path)


def _read_ncnn(path: Path) -> PlainNet:
    from .exports import read_ncnn

    return plain_from_state(read_ncnn(path), path)


def read_plain(path: Path) -> PlainNet:
    """Any model file a user can name -> its weights; torch is imported only for PyTorch files."""
    path = Path(path)
    readers = {".safetensors": _read_safetensors, ".param": _read_ncnn}
    return readers.get(path.suffix, _read_pth)(path)


def read_deploy(path: Path) -> DeployNet:
    """Any model file a user can name -> the deploy network, eval mode, float32, on the CPU."""
    return deploy_net(read_plain(path))
