"""Every training-time block folds exactly into one 3x3 conv, with real BN statistics."""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F
from torch import nn

from repsr_cli.model import BNPhase, RepSRNet, fuse, set_bn_phase
from repsr_cli.model.batchnorm import PhasedBatchNorm2d
from repsr_cli.model.blocks import BLOCKS
from repsr_cli.model.net import NetConfig


def with_statistics(module: nn.Module) -> nn.Module:
    """Run batches through in the batch phase, then randomise every BN's affine parameters."""
    module.train()
    with torch.no_grad():
        for _ in range(3):
            module(torch.randn(4, module_channels(module), 10, 10, dtype=torch.float64) * 2 + 0.5)
        for m in module.modules():
            if isinstance(m, PhasedBatchNorm2d):
                m.weight.uniform_(0.5, 2.0)
                m.bias.uniform_(-0.5, 0.5)
                assert m.num_batches_tracked > 0
    return module.eval()


def module_channels(module: nn.Module) -> int:
    return next(m for m in module.modules() if isinstance(m, nn.Conv2d)).in_channels


@pytest.mark.parametrize("name", sorted(BLOCKS))
@pytest.mark.parametrize("bn", [True, False])
def test_block_folds_exactly(name: str, bn: bool) -> None:
    torch.manual_seed(0)
    block = with_statistics(BLOCKS[name](6, expand=2, bn=bn).double())
    weight, bias = block.fuse()
    assert weight.shape == (6, 6, 3, 3)
    x = torch.randn(2, 6, 11, 9, dtype=torch.float64)
    with torch.no_grad():
        expected = block(x)
        got = F.conv2d(x, weight, bias, padding=1)
    assert (expected - got).abs().max().item() < 1e-10


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_network_of_each_block_fuses(name: str) -> None:
    torch.manual_seed(1)
    net = RepSRNet(NetConfig(scale=2, channels=8, blocks=2, block=name)).double()
    with_statistics_net(net)
    set_bn_phase(net, BNPhase.POPULATION)
    x = torch.rand(1, 3, 12, 10, dtype=torch.float64)
    with torch.no_grad():
        assert (net.run(x, fold=False) - fuse(net)(x)).abs().max().item() < 1e-10


def with_statistics_net(net: RepSRNet) -> None:
    net.train()
    with torch.no_grad():
        for _ in range(2):
            net(torch.rand(3, 3, 12, 10, dtype=torch.float64))
    net.eval()


@pytest.mark.parametrize("name", sorted(BLOCKS))
def test_training_through_the_fold_is_training_the_branches(name: str) -> None:
    """In the population phase a train-mode network runs each block as its fused conv: the same output and the
    same gradient for every parameter as running the branches (float64); in the batch phase it runs the branches,
    whose mini-batch statistics no fixed conv has."""
    torch.manual_seed(2)
    net = RepSRNet(NetConfig(scale=2, channels=8, blocks=2, block=name)).double()
    with_statistics_net(net)
    x = torch.rand(2, 3, 11, 13, dtype=torch.float64)
    params = [p for p in net.parameters() if p.requires_grad]

    def output_and_grads(fold: bool) -> tuple[torch.Tensor, list[torch.Tensor]]:
        out = net.run(x, fold=fold)
        return out, list(torch.autograd.grad(out.square().sum(), params))

    net.train()
    set_bn_phase(net, BNPhase.POPULATION)
    assert net.folds()
    (branches, grads_b), (folded, grads_f) = output_and_grads(False), output_and_grads(True)
    assert (branches - folded).abs().max().item() < 1e-10
    for gb, gf in zip(grads_b, grads_f, strict=True):
        assert (gb - gf).abs().max().item() < 1e-9 * max(1.0, gb.abs().max().item())
    assert torch.equal(net(x), folded)
    if name != "ecb" and name != "plain":  # the blocks with BatchNorm
        set_bn_phase(net, BNPhase.BATCH)
        assert not net.folds()
        assert not torch.allclose(net(x), folded)  # batch statistics: not what the fold computes
