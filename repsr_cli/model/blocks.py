"""Training-time blocks. Each one computes what it computes and `fuse()`s to one 3x3 conv.

Adding a block type means one class here plus its name in BLOCKS and in schema.BLOCK_NAMES.
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

from ..schema import BLOCK_NAMES
from .batchnorm import PhasedBatchNorm2d
from .kernels import (
    Kernel,
    add_kernels,
    compose_pointwise,
    conv_kernel,
    depthwise_to_dense,
    fold_bn,
    identity_kernel,
    pad_kernel,
    pointwise_then,
)


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


class ConvBN(nn.Module):
    """kxk conv (no bias) + phased BN, padded to keep the size: one branch of ACB, RepVGG and DBB."""

    def __init__(self, cin: int, cout: int, kernel: tuple[int, int]) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, kernel, padding=(kernel[0] // 2, kernel[1] // 2), bias=False)
        self.bn = PhasedBatchNorm2d(cout)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(x))

    def fuse(self) -> Kernel:
        return pad_kernel(fold_bn(conv_kernel(self.conv), self.bn))


class ACBlock(nn.Module):
    """ACNet's asymmetric convolution block (Ding et al., ICCV 2019): 3x3, 1x3 and 3x1 convs, each with BN."""

    def __init__(self, channels: int, **_: object) -> None:
        super().__init__()
        self.square = ConvBN(channels, channels, (3, 3))
        self.hor = ConvBN(channels, channels, (1, 3))
        self.ver = ConvBN(channels, channels, (3, 1))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.square(x) + self.hor(x) + self.ver(x)

    def fuse(self) -> Kernel:
        return add_kernels(self.square.fuse(), self.hor.fuse(), self.ver.fuse())


class RepVGGBlock(nn.Module):
    """RepVGG's block (Ding et al., CVPR 2021): 3x3 conv + BN, 1x1 conv + BN, and an identity BN."""

    def __init__(self, channels: int, **_: object) -> None:
        super().__init__()
        self.square = ConvBN(channels, channels, (3, 3))
        self.point = ConvBN(channels, channels, (1, 1))
        self.identity = PhasedBatchNorm2d(channels)
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.square(x) + self.point(x) + self.identity(x)

    def fuse(self) -> Kernel:
        ident = fold_bn(identity_kernel(self.channels, like=self.square.conv.weight), self.identity)
        return add_kernels(self.square.fuse(), self.point.fuse(), ident)


class _PadThenPointwise(nn.Module):
    """Zero-pad the input by one, then 1x1 conv (+ BN): the hidden map carries its true border values, so a
    following unpadded 3x3 op folds exactly (DBB and ECBSR pad the hidden map with its bias for the same end)."""

    def __init__(self, cin: int, cout: int, bn: bool) -> None:
        super().__init__()
        self.conv = nn.Conv2d(cin, cout, 1, bias=not bn)
        self.bn = PhasedBatchNorm2d(cout) if bn else nn.Identity()

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.bn(self.conv(F.pad(x, (1, 1, 1, 1))))

    def fuse(self) -> Kernel:
        kernel = conv_kernel(self.conv)
        return fold_bn(kernel, self.bn) if isinstance(self.bn, nn.BatchNorm2d) else kernel


class DBBlock(nn.Module):
    """Diverse Branch Block (Ding et al., CVPR 2021): 3x3+BN, 1x1+BN, 1x1+BN->avg-pool+BN, 1x1+BN->3x3+BN."""

    def __init__(self, channels: int, expand: int = 1, **_: object) -> None:
        super().__init__()
        c = channels
        self.square = ConvBN(c, c, (3, 3))
        self.point = ConvBN(c, c, (1, 1))
        self.avg_in = _PadThenPointwise(c, c, bn=True)
        self.avg_bn = PhasedBatchNorm2d(c)
        self.seq_in = _PadThenPointwise(c, c * expand, bn=True)
        self.seq_conv = nn.Conv2d(c * expand, c, 3, bias=False)
        self.seq_bn = PhasedBatchNorm2d(c)
        self.channels = c

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        avg = self.avg_bn(F.avg_pool2d(self.avg_in(x), 3, stride=1))
        seq = self.seq_bn(self.seq_conv(self.seq_in(x)))
        return self.square(x) + self.point(x) + avg + seq

    def fuse(self) -> Kernel:
        w = self.square.conv.weight
        pool = torch.full((self.channels, 1, 3, 3), 1 / 9, dtype=w.dtype, device=w.device)
        pool_kernel = (depthwise_to_dense(pool), torch.zeros(self.channels, dtype=w.dtype, device=w.device))
        avg = pointwise_then(self.avg_in.fuse(), fold_bn(pool_kernel, self.avg_bn))
        seq = pointwise_then(self.seq_in.fuse(), fold_bn(conv_kernel(self.seq_conv), self.seq_bn))
        return add_kernels(self.square.fuse(), self.point.fuse(), avg, seq)


# Fixed edge filters of ECBSR's edge-oriented branches.
SOBEL_X = ((1.0, 0.0, -1.0), (2.0, 0.0, -2.0), (1.0, 0.0, -1.0))
SOBEL_Y = ((1.0, 2.0, 1.0), (0.0, 0.0, 0.0), (-1.0, -2.0, -1.0))
LAPLACIAN = ((0.0, 1.0, 0.0), (1.0, -4.0, 1.0), (0.0, 1.0, 0.0))


class _EdgeBranch(nn.Module):
    """1x1 conv, then a fixed edge filter per channel with a learnable scale and bias (ECBSR)."""

    def __init__(self, channels: int, mask: tuple[tuple[float, ...], ...]) -> None:
        super().__init__()
        self.point = _PadThenPointwise(channels, channels, bn=False)
        self.scale = nn.Parameter(torch.randn(channels, 1, 1, 1) * 1e-3)
        self.bias = nn.Parameter(torch.randn(channels) * 1e-3)
        self.register_buffer("mask", torch.tensor(mask).expand(channels, 1, 3, 3).clone())
        self.channels = channels

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return F.conv2d(self.point(x), self.scale * self.mask, self.bias, groups=self.channels)

    def fuse(self) -> Kernel:
        edge = (depthwise_to_dense(self.scale * self.mask), self.bias)
        return pointwise_then(self.point.fuse(), edge)


class ECBlock(nn.Module):
    """ECBSR's edge-oriented convolution block (Zhang et al., ACM MM 2021), no BN: 3x3, 1x1->3x3 (expanded),
    and 1x1 followed by Sobel-x, Sobel-y and Laplacian filters."""

    def __init__(self, channels: int, expand: int = 2, **_: object) -> None:
        super().__init__()
        c = channels
        self.square = nn.Conv2d(c, c, 3, padding=1)
        self.seq_in = _PadThenPointwise(c, c * expand, bn=False)
        self.seq_conv = nn.Conv2d(c * expand, c, 3)
        self.edges = nn.ModuleList(_EdgeBranch(c, m) for m in (SOBEL_X, SOBEL_Y, LAPLACIAN))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        out = self.square(x) + self.seq_conv(self.seq_in(x))
        for edge in self.edges:
            out = out + edge(x)
        return out

    def fuse(self) -> Kernel:
        seq = pointwise_then(self.seq_in.fuse(), conv_kernel(self.seq_conv))
        return add_kernels(conv_kernel(self.square), seq, *(e.fuse() for e in self.edges))


class PlainConv(nn.Module):
    """A lone 3x3 conv: the un-reparameterized baseline."""

    def __init__(self, channels: int, **_: object) -> None:
        super().__init__()
        self.conv = nn.Conv2d(channels, channels, 3, padding=1)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.conv(x)

    def fuse(self) -> Kernel:
        return conv_kernel(self.conv)


BLOCKS: dict[str, type[nn.Module]] = {
    "repsr": RepSRBlock,
    "ecb": ECBlock,
    "acb": ACBlock,
    "repvgg": RepVGGBlock,
    "dbb": DBBlock,
    "plain": PlainConv,
}
if tuple(BLOCKS) != BLOCK_NAMES:  # the CLI offers schema.BLOCK_NAMES: a new block is added in both places
    raise ImportError(f"model.blocks.BLOCKS {tuple(BLOCKS)} differs from schema.BLOCK_NAMES {BLOCK_NAMES}")
