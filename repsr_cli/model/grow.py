"""Function-preserving growth of a RepSR network: a small trained model becomes the start of a bigger one.

The idea is Net2Net's (Chen, Goodfellow, Shlens, ICLR 2016, arXiv 1511.05641): the bigger network starts out
computing exactly what the smaller one computed, so training continues from the small model's quality instead of
from noise. Here that needs no weight splitting, only zeros:
- a new channel may read anything (random weights), but nothing the old channels compute reads a new channel
  (zero weights from new channels into old ones), so the old channels carry the old values;
- a new block is an identity: a RepSR block whose two paths end in an all-zero 1x1 conv is its identity path
  (Wang et al., 2022, Fig. 3), and a PReLU of slope 1 is the identity.
The zero weights get gradients (their inputs are not zero), so nothing stays dead. BN statistics of the old
hidden channels see only old inputs, so the function is kept in both BN phases.
"""

from __future__ import annotations

import torch
from torch import nn

from .batchnorm import bn_phase, set_bn_phase
from .blocks import RepSRBlock
from .net import NetConfig, RepSRNet


def can_grow(src: NetConfig, dst: NetConfig) -> bool:
    """A repsr network grows into a bigger one of the same scale, expansion and BN choice."""
    same = (src.scale, src.expand, src.block, src.bn) == (dst.scale, dst.expand, dst.block, dst.bn)
    bigger = (src.channels, src.blocks) != (dst.channels, dst.blocks)
    return same and src.block == "repsr" and bigger and src.channels <= dst.channels and src.blocks <= dst.blocks


def block_positions(old: int, new: int) -> list[int]:
    """Where the old blocks go among the new ones: spread evenly, the identity blocks in the gaps."""
    return [i * new // old for i in range(old)]


@torch.no_grad()
def grow(src: RepSRNet, dst: RepSRNet) -> RepSRNet:
    """Write `src` into `dst` (freshly initialised, bigger) so that `dst` computes `src`'s function."""
    if not can_grow(src.cfg, dst.cfg):
        raise ValueError(f"cannot grow {src.cfg} into {dst.cfg}")
    c = src.cfg.channels
    old, new = src.body, dst.body
    _copy_in(new[0], old[0], c_in=None, c_out=c)  # first conv: 3 inputs either way
    _copy_in(new[1], old[1], c_in=None, c_out=c)
    positions = block_positions(src.cfg.blocks, dst.cfg.blocks)
    for j in range(dst.cfg.blocks):
        block, prelu = new[2 + 2 * j], new[3 + 2 * j]
        if j in positions:
            i = positions.index(j)
            _copy_block(block, old[2 + 2 * i], c)
            _copy_in(prelu, old[3 + 2 * i], c_in=None, c_out=c)
        else:
            for path in block.paths:
                path.squeeze.weight.zero_()
                path.squeeze.bias.zero_()
            prelu.weight.fill_(1.0)
    _copy_in(new[-1], old[-1], c_in=c, c_out=None)
    phase = bn_phase(src)
    if phase is not None:
        set_bn_phase(dst, phase)
    return dst


def _copy_block(dst: RepSRBlock, src: RepSRBlock, c: int) -> None:
    h = src.paths[0].squeeze.in_channels  # the old hidden width
    for new_path, old_path in zip(dst.paths, src.paths, strict=True):
        _copy_in(new_path.expand, old_path.expand, c_in=c, c_out=h)
        bn_new, bn_old = new_path.bn, old_path.bn
        if isinstance(bn_old, nn.BatchNorm2d):
            for name in ("weight", "bias", "running_mean", "running_var"):
                getattr(bn_new, name)[:h] = getattr(bn_old, name)
        _copy_in(new_path.squeeze, old_path.squeeze, c_in=h, c_out=c)


def _copy_in(dst: nn.Module, src: nn.Module, c_in: int | None, c_out: int | None) -> None:
    """Old weights into the leading corner; the new inputs of old outputs set to zero (`c_in` old inputs)."""
    for name, old in src.named_parameters(recurse=False):
        new = getattr(dst, name)
        new[tuple(slice(0, n) for n in old.shape)] = old
        if name == "weight" and c_in is not None:
            new[:c_out, c_in:] = 0  # c_out None (the last conv): every output is an old one
