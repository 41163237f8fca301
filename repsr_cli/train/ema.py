"""The generator EMA: an exponential moving average of the weights, which is what a sharp run ships.

Real-ESRGAN keeps one (decay 0.999): GAN training oscillates, and the average of recent weights is steadier
and shows fewer artefacts than any single step's. Buffers (BN statistics and phase) are copied, not averaged,
so the EMA network normalises as the trained one does.
"""

from __future__ import annotations

import copy

import torch
from torch import nn


class GeneratorEMA:
    def __init__(self, net: nn.Module, decay: float) -> None:
        self.decay = decay
        self.net = copy.deepcopy(net)
        self.net.requires_grad_(False)

    @torch.no_grad()
    def update(self, net: nn.Module) -> None:
        for avg, p in zip(self.net.parameters(), net.parameters(), strict=True):
            avg.lerp_(p.detach(), 1 - self.decay)
        for avg, b in zip(self.net.buffers(), net.buffers(), strict=True):
            avg.copy_(b)

    @torch.no_grad()
    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Output in the online network's mode (mini-batch BN in the batch phase), for LDL's comparison."""
        return self.net(x)
