"""A perceptual loss that needs no downloaded weights: features of a fixed, randomly initialised VGG-style net.

Liu et al. (Generic Perceptual Loss, CVPR 2021, arXiv 2103.10571) found that the structure of a deep CNN, not its
ImageNet training, is what makes a perceptual loss work for super-resolution: an untrained VGG served on a par
with a trained one. Ours is VGG's pattern (two 3x3 conv + ReLU per stage, 2x2 pooling between stages), narrower so
that it costs about what the generator's step costs on a CPU. Its weights come from a fixed seed on a private
generator: every run, and every resume, sees the same network, and the global RNG is not touched, so nothing of it
needs to be in a checkpoint. He (Kaiming) initialisation keeps each stage's activations at the input's scale, so
the stages weigh about equally (the paper also sets its random net's init for stable gradient scales).
"""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import nn

SEED = 20210318  # any fixed number: the network is part of the recipe, not of the run


class RandomFeatures(nn.Module):
    """Frozen: it only ever measures; its parameters take no gradient."""

    def __init__(self, widths: tuple[int, ...] = (16, 32, 64)) -> None:
        super().__init__()
        gen = torch.Generator().manual_seed(SEED)
        stages: list[nn.Sequential] = []
        cin = 3
        for cout in widths:
            # skip_init: nn.Conv2d's own init would draw from the global RNG
            convs = [nn.utils.skip_init(nn.Conv2d, a, cout, 3, padding=1) for a in (cin, cout)]
            for conv in convs:
                fan_in = conv.in_channels * 9
                with torch.no_grad():
                    conv.weight.copy_(torch.randn(conv.weight.shape, generator=gen) * (2.0 / fan_in) ** 0.5)
                    conv.bias.zero_()
            stages.append(nn.Sequential(convs[0], nn.ReLU(), convs[1], nn.ReLU()))
            cin = cout
        self.stages = nn.ModuleList(stages)
        self.requires_grad_(False)

    def forward(self, x: torch.Tensor) -> list[torch.Tensor]:
        feats = []
        out = x - 0.5  # centred, as a VGG's normalised input is
        for i, stage in enumerate(self.stages):
            if i:
                out = F.avg_pool2d(out, 2)
            out = stage(out)
            feats.append(out)
        return feats


def feature_loss(net: RandomFeatures, sr: torch.Tensor, hr: torch.Tensor) -> torch.Tensor:
    """Mean over the stages of the L1 distance between output and target features."""
    with torch.no_grad():
        targets = net(hr)
    return sum(F.l1_loss(a, b) for a, b in zip(net(sr), targets, strict=True)) / len(targets)
