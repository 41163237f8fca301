"""Re-parameterization is exact: the fused plain network computes what the training network computes."""

from __future__ import annotations

import pytest
import torch
from torch import nn

from repsr_cli.model import BNPhase, RepSRNet, fuse, set_bn_phase, size_config
from repsr_cli.model.batchnorm import PhasedBatchNorm2d


def randomized_net(scale: int, dtype: torch.dtype, seed: int = 0) -> RepSRNet:
    """A network with non-trivial BN statistics (from real batches) and affine parameters."""
    torch.manual_seed(seed)
    net = RepSRNet(size_config("tiny", scale)).to(dtype)
    net.train()
    with torch.no_grad():
        for _ in range(3):
            net(torch.rand(4, 3, 12, 12, dtype=dtype) * 2 - 0.5)
        for m in net.modules():
            if isinstance(m, PhasedBatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
            if isinstance(m, nn.PReLU):
                m.weight.uniform_(0.05, 0.4)
    return net


def bn_stats_are_nontrivial(net: RepSRNet) -> bool:
    bns = [m for m in net.modules() if isinstance(m, PhasedBatchNorm2d)]
    return all((bn.running_mean.abs() > 1e-4).any() and (bn.running_var - 1).abs().max() > 1e-3 for bn in bns)


@pytest.mark.parametrize("scale", [2, 3, 4])
@pytest.mark.parametrize("phase", [BNPhase.BATCH, BNPhase.POPULATION])
@pytest.mark.parametrize(("dtype", "tol"), [(torch.float64, 1e-10), (torch.float32, 1e-5)])
def test_fused_matches_training_network(scale: int, phase: BNPhase, dtype: torch.dtype, tol: float) -> None:
    net = randomized_net(scale, dtype)
    assert bn_stats_are_nontrivial(net)
    set_bn_phase(net, phase)
    net.eval()
    deploy = fuse(net)
    x = torch.rand(2, 3, 19, 23, dtype=dtype)
    with torch.no_grad():
        expected, got = net.run(x, fold=False), deploy(x)  # the branches, not the fold that `net(x)` may take
    assert got.shape == (2, 3, 19 * scale, 23 * scale)
    assert (expected - got).abs().max().item() < tol
    # A broken fold (say, the identity dropped) must be far outside the tolerance.
    deploy.body[2].weight.data[0, 0, 1, 1] -= 1
    with torch.no_grad():
        assert (net.run(x, fold=False) - deploy(x)).abs().max().item() > 1e-3


def test_population_phase_in_train_mode_matches_fused() -> None:
    """In the population phase even train mode normalises with stored statistics, like the fused net."""
    net = randomized_net(4, torch.float64)
    set_bn_phase(net, BNPhase.POPULATION)
    net.train()
    x = torch.rand(2, 3, 16, 16, dtype=torch.float64)
    with torch.no_grad():
        assert (net.run(x, fold=False) - fuse(net)(x)).abs().max().item() < 1e-10
