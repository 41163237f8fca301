"""Growing a trained network into a bigger model size keeps its function exactly, and every new weight can learn."""

from __future__ import annotations

from pathlib import Path

import pytest
import torch

from repsr_cli.formats.checkpoint import load_checkpoint, model_from_checkpoint
from repsr_cli.model import BNPhase, NetConfig, RepSRNet, fuse, set_bn_phase
from repsr_cli.model.grow import block_positions, can_grow, grow
from repsr_cli.train.trainer import Trainer

from .conftest import tiny_config


def _trained_like(cfg: NetConfig) -> RepSRNet:
    """A network whose BN statistics, affines and slopes are far from their defaults, as a trained one's are."""
    torch.manual_seed(3)
    net = RepSRNet(cfg).double()
    with torch.no_grad():
        for p in net.parameters():
            p.add_(0.2 * torch.randn_like(p))
        for m in net.modules():
            if isinstance(m, torch.nn.BatchNorm2d):
                m.running_mean.normal_()
                m.running_var.uniform_(0.3, 3.0)
    return net


@pytest.mark.parametrize(("small", "big"), [((4, 16), (10, 32)), ((10, 32), (16, 64)), ((3, 8), (3, 12))])
@pytest.mark.parametrize("phase", [BNPhase.POPULATION, BNPhase.BATCH])
def test_grown_network_computes_the_same_function(small: tuple, big: tuple, phase: BNPhase) -> None:
    src = _trained_like(NetConfig(scale=2, blocks=small[0], channels=small[1]))
    dst = grow(src, RepSRNet(NetConfig(scale=2, blocks=big[0], channels=big[1])).double())
    set_bn_phase(src, phase)
    set_bn_phase(dst, phase)
    x = torch.rand(2, 3, 17, 19, dtype=torch.float64)
    with torch.no_grad():
        assert torch.equal(src.train()(x), dst.train()(x))
        if phase == BNPhase.POPULATION:
            torch.testing.assert_close(fuse(dst)(x), fuse(src)(x), rtol=0, atol=1e-10)
    # The grown network is a different, bigger one: a test that could not fail would pass here too.
    fresh = RepSRNet(dst.cfg).double()
    assert not torch.allclose(fresh.train()(x), src(x))


def test_every_new_weight_gets_a_gradient() -> None:
    """Zeros that start a new channel's outputs or a new block's paths are not dead: their inputs are not zero."""
    src = _trained_like(NetConfig(scale=2, blocks=2, channels=8))
    dst = grow(src, RepSRNet(NetConfig(scale=2, blocks=4, channels=12)).double())
    dst(torch.rand(2, 3, 16, 16, dtype=torch.float64)).square().mean().backward()
    squeezes = [m for m in dst.modules() if isinstance(m, torch.nn.Conv2d) and m.kernel_size == (1, 1)]
    assert all(m.weight.grad.abs().amax() > 0 for m in squeezes)
    assert dst.body[-1].weight.grad[:, 8:].abs().amax() > 0


def test_only_a_bigger_repsr_network_of_the_same_scale_grows() -> None:
    small = NetConfig(scale=2, blocks=4, channels=16)
    assert can_grow(small, NetConfig(scale=2, blocks=10, channels=32))
    assert not can_grow(small, small)
    assert not can_grow(small, NetConfig(scale=4, blocks=10, channels=32))  # the last conv has no old outputs
    assert not can_grow(small, NetConfig(scale=2, blocks=2, channels=32))
    assert not can_grow(small, NetConfig(scale=2, blocks=10, channels=32, block="ecb"))
    assert block_positions(10, 16) == sorted(set(block_positions(10, 16)))  # distinct, in order
    with pytest.raises(ValueError):
        grow(RepSRNet(small), RepSRNet(small))


def test_init_from_a_smaller_model_size_grows_it(tmp_path: Path, image_folder: Path) -> None:
    Trainer(tiny_config(image_folder, tmp_path / "tiny")).run()
    source = tmp_path / "tiny" / "checkpoints" / "last.pth"
    run = Trainer(tiny_config(image_folder, tmp_path / "small", size="small", init_from=str(source)))
    src = model_from_checkpoint(load_checkpoint(source), source).double().eval()
    net = run.net.double()
    set_bn_phase(net, BNPhase.POPULATION)  # the run itself starts its own batch phase
    x = torch.rand(1, 3, 14, 14, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(net.eval()(x), src(x), rtol=0, atol=1e-12)
