"""RepSRNet (training time) and the plain deploy network it fuses into.

Both keep one `body` list in the layout of Real-ESRGAN's SRVGGNetCompact: conv, PReLU, then per block
(block-or-conv, PReLU), then a conv to 3*s*s channels, PixelShuffle, plus the nearest-neighbour
upsampled input. Because the indices match, the fused state dict has exactly SRVGGNetCompact's keys
(`body.0.weight`, `body.1.weight`, ...) and loads unchanged in spandrel, chaiNNer and Real-ESRGAN.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import MODEL_SIZES
from .batchnorm import BNPhase, bn_phase
from .blocks import BLOCKS


@dataclass(frozen=True)
class NetConfig:
    scale: int = 4
    channels: int = 16
    blocks: int = 4
    expand: int = 2
    block: str = "repsr"
    bn: bool = True

    def __post_init__(self) -> None:
        if self.block not in BLOCKS:
            raise ValueError(f"unknown block type {self.block!r}; known: {', '.join(BLOCKS)}")
        if self.scale < 1 or self.channels < 1 or self.blocks < 0 or self.expand < 1:
            raise ValueError(f"invalid network configuration: {self}")

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> NetConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in data.items() if k in names})


def size_config(name: str, scale: int, **overrides: object) -> NetConfig:
    if name not in MODEL_SIZES:
        raise ValueError(f"unknown model size {name!r}; known: {', '.join(MODEL_SIZES)}")
    blocks, channels = MODEL_SIZES[name]
    return NetConfig(scale=scale, channels=channels, blocks=blocks, **overrides)


class _PlainVGG(nn.Module):
    """Shared forward of both networks: run `body`, add the nearest-upsampled input, shuffle pixels."""

    body: nn.ModuleList
    scale: int

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, fold=False)

    def run(self, x: torch.Tensor, fold: bool) -> torch.Tensor:
        """The network on `x`; with `fold`, each training-time block runs as the one 3x3 conv it fuses to."""
        return F.pixel_shuffle(self.subpixels(x, fold), self.scale)

    def subpixels(self, x: torch.Tensor, fold: bool = False) -> torch.Tensor:
        """The network before its pixel shuffle: N x 3s^2 x H x W, channel c*s^2 + k holding colour c of sub-pixel
        k. The Upscaler rounds these to integers and shuffles after (media.tensors.to_array): a quarter of the
        bytes to move."""
        out = x
        for layer in self.body:
            out = _folded_conv(layer, out) if fold and hasattr(layer, "fuse") else layer(out)
        # The nearest-upsampled input lands on each pixel's s*s sub-pixels, which PixelShuffle takes from s*s
        # consecutive channels: adding the input to those channels before the shuffle gives the same sums as
        # upsampling and adding after it, at 1/s^2 of the memory traffic and without the upsampled copy.
        s = self.scale
        return (out.unflatten(1, (3, s * s)) + x.unsqueeze(2)).flatten(1, 2)


def _folded_conv(block: nn.Module, x: torch.Tensor) -> torch.Tensor:
    # The kernel is composed in the parameters' precision, outside autocast: a low-precision fold would round
    # every composed weight, where the branches round only their activations.
    with torch.autocast(x.device.type, enabled=False):
        weight, bias = block.fuse()
    return F.conv2d(x, weight.to(x.dtype), bias.to(x.dtype), padding=1)


def _body(cfg: NetConfig, make_middle) -> nn.ModuleList:
    layers: list[nn.Module] = [nn.Conv2d(3, cfg.channels, 3, padding=1), nn.PReLU(cfg.channels)]
    for _ in range(cfg.blocks):
        layers += [make_middle(), nn.PReLU(cfg.channels)]
    layers.append(nn.Conv2d(cfg.channels, 3 * cfg.scale * cfg.scale, 3, padding=1))
    return nn.ModuleList(layers)


class RepSRNet(_PlainVGG):
    """The training-time network: plain VGG whose middle 3x3 convs are multi-branch blocks."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = cfg
        self.scale = cfg.scale
        block = BLOCKS[cfg.block]
        self.body = _body(cfg, lambda: block(cfg.channels, expand=cfg.expand, bn=cfg.bn))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.run(x, fold=self.folds())

    def folds(self) -> bool:
        """Whether every block is a fixed linear map now: its BatchNorm normalises with stored statistics
        (population phase, or eval mode) or it has none. Then running it as its fused 3x3 conv computes the same
        values and, through the differentiable fold, the same gradients as its branches, at the cost of one
        plain conv: online re-parameterization (OREPA, Hu et al., CVPR 2022, arXiv 2204.00826). Only the batch
        phase of training needs the branches, for their mini-batch statistics."""
        return not (self.training and bn_phase(self) is BNPhase.BATCH)


class DeployNet(_PlainVGG):
    """SRVGGNetCompact with PReLU: what users run. Same keys, shapes and forward."""

    def __init__(self, cfg: NetConfig) -> None:
        super().__init__()
        self.cfg = NetConfig(scale=cfg.scale, channels=cfg.channels, blocks=cfg.blocks)
        self.scale = cfg.scale
        self.body = _body(cfg, lambda: nn.Conv2d(cfg.channels, cfg.channels, 3, padding=1))

    @property
    def receptive_radius(self) -> int:
        """LR pixels of context each output pixel depends on, per side (one per 3x3 conv)."""
        return self.cfg.blocks + 2


@torch.no_grad()
def fuse(net: RepSRNet) -> DeployNet:
    """Fold every training-time block into its 3x3 conv; the result computes the same function."""
    deploy = DeployNet(net.cfg).to(dtype=next(net.parameters()).dtype, device=next(net.parameters()).device)
    for src, dst in zip(net.body, deploy.body, strict=True):
        if hasattr(src, "fuse"):
            weight, bias = src.fuse()
            dst.weight.copy_(weight)
            dst.bias.copy_(bias)
        else:
            dst.load_state_dict(src.state_dict())
    return deploy.eval()
