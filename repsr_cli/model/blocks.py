"""Training-time blocks. Each one computes what it computes and `fuse()`s to one 3x3 conv.

Adding a block type means one class here plus its entry in BLOCKS.
"""

from __future__ import annotations

import torch
from torch import nn

from .batchnorm import PhasedBatchNorm2d
from .fuse import Kernel, add_kernels, compose_pointwise, conv_kernel, fold_bn, identity_kernel


class ExpandSqueezePath(nn.Module):
    """3x3 conv C -> rC, BatchNorm, 1x1 conv rC -> C: one branch of the RepSR block."""

    def __init__(self, channels: int, expand: int, bn: bool) -> None:
        super().__init__()
        hidden = channels * expand
        # With BN the expand conv's bias is redundant (BN removes the mean), so it has none.
        self.expand = nn.Conv2d(channels, hidden, 3, padding=1, bias=not bn)
        self.bn = PhasedBatchNorm2d(hidden) if bn else nn.Identity()
        self.squeeze = nn.Conv2d(hidden, channels, 1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.squeeze(self.bn(self.expand(x)))

    def fuse(self) -> Kernel:
        kernel = conv_kernel(self.expand)
        if isinstance(self.bn, nn.BatchNorm2d):
            kernel = fold_bn(kernel, self.bn)
        return compose_pointwise(kernel, conv_kernel(self.squeeze))


class RepSRBlock(nn.Module):
    """RepSR block (Wang et al., 2022, Fig. 3): a clean identity plus two expand-and-squeeze paths."""

    def __init__(self, channels: int, expand: int = 2, bn: bool = True, paths: int = 2) -> None:
        super().__init__()
        self.channels = channels
        self.paths = nn.ModuleList(ExpandSqueezePath(channels, expand, bn) for _ in range(paths))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = x
        for path in self.paths:
            out = out + path(x)
        return out

    def fuse(self) -> Kernel:
        branches = [p.fuse() for p in self.paths]
        return add_kernels(identity_kernel(self.channels, like=branches[0][0]), *branches)


class PlainConv(nn.Module):
    """A lone 3x3 conv: the un-reparameterized baseline."""

    def __init__(self, channels: int, **_: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def fuse(self) -> Kernel:
        return conv_kernel(self.conv)


BLOCKS: dict[str, type[nn.Module]] = {"repsr": RepSRBlock, "plain": PlainConv}
