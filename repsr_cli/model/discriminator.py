"""The discriminator of adversarial (sharp) training: a compact patch discriminator with spectral norm.

It only ever trains; it is never fused or exported. It downsamples by 2x2 average pooling, never by strided
convolutions: the gradient a strided convolution sends back repeats with its stride, and through PixelShuffle
that periodic gradient lands on the same sub-pixel phases step after step, which trained a checkerboard into
the generator within a few hundred steps (benchmarks/sharp_recipes.py, docs/sharp.md). Average pooling sends
back the same gradient to every pixel of its window, so no phase is favoured. Spectral normalisation (Miyato
et al., ICLR 2018, arXiv 1802.05957) keeps it Lipschitz, as Real-ESRGAN's U-Net discriminator does; its
power-iteration vectors are buffers, so a checkpoint resumes exactly. 16 channels at the first layer keep
it small beside the generator (the sharp runs' step rates are in weights/runs.md).
"""

from __future__ import annotations

import torch
from torch import nn
from torch.nn.utils.parametrizations import spectral_norm


def _conv(cin: int, cout: int) -> nn.Module:
    return spectral_norm(nn.Conv2d(cin, cout, 3, padding=1))


POOLS = 3  # 2x2 average pools: an input side under 2**POOLS leaves nothing for the last one
MIN_SIDE = 2**POOLS


class PatchDiscriminator(nn.Module):
    """Logits per patch: a 3x3 conv at full size, then three (2x2 average pool, 3x3 conv doubling the width),
    then a 3x3 conv to one channel; each patch logit sees about 60 pixels of the input."""

    def __init__(self, channels: int = 16) -> None:
        super().__init__()
        widths = [channels, channels * 2, channels * 4, channels * 8]
        layers: list[nn.Module] = [_conv(3, widths[0]), nn.LeakyReLU(0.2)]
        assert len(widths) - 1 == POOLS
        for cin, cout in zip(widths, widths[1:], strict=False):
            layers += [nn.AvgPool2d(2), _conv(cin, cout), nn.LeakyReLU(0.2)]
        layers.append(_conv(widths[-1], 1))
        self.body = nn.Sequential(*layers)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return self.body(x)
