"""BN phases: state of the model, not of train()/eval(); population statistics are exact averages."""

from __future__ import annotations

import io

import torch

from repsr_cli.model import BNPhase, RepSRNet, bn_phase, estimate_population_stats, set_bn_phase, size_config
from repsr_cli.model.batchnorm import PhasedBatchNorm2d


def norms(net: torch.nn.Module) -> list[PhasedBatchNorm2d]:
    return [m for m in net.modules() if isinstance(m, PhasedBatchNorm2d)]


def test_phase_survives_train_eval_and_state_dict_round_trip() -> None:
    net = RepSRNet(size_config("tiny", 2))
    assert bn_phase(net) == BNPhase.BATCH
    set_bn_phase(net, BNPhase.POPULATION)
    net.train()
    net.eval()
    net.train()
    assert bn_phase(net) == BNPhase.POPULATION
    buffer = io.BytesIO()
    torch.save(net.state_dict(), buffer)
    buffer.seek(0)
    fresh = RepSRNet(size_config("tiny", 2))
    assert bn_phase(fresh) == BNPhase.BATCH
    fresh.load_state_dict(torch.load(buffer, weights_only=True))
    fresh.train()
    assert bn_phase(fresh) == BNPhase.POPULATION


def test_population_phase_freezes_statistics_but_affine_and_convs_learn() -> None:
    torch.manual_seed(0)
    net = RepSRNet(size_config("tiny", 2))
    set_bn_phase(net, BNPhase.POPULATION)
    net.train()
    before = [(bn.running_mean.clone(), bn.running_var.clone()) for bn in norms(net)]
    out = net(torch.rand(4, 3, 10, 10))
    out.mean().backward()
    for bn, (mean, var) in zip(norms(net), before, strict=True):
        assert torch.equal(bn.running_mean, mean) and torch.equal(bn.running_var, var)
        assert bn.weight.grad is not None and bn.weight.grad.abs().sum() > 0
    assert net.body[2].paths[0].expand.weight.grad.abs().sum() > 0


def test_batch_phase_updates_running_statistics() -> None:
    net = RepSRNet(size_config("tiny", 2)).train()
    bn = norms(net)[0]
    before = bn.running_mean.clone()
    net(torch.rand(4, 3, 10, 10))
    assert not torch.equal(bn.running_mean, before)


def test_population_statistics_are_the_exact_average_over_batches() -> None:
    torch.manual_seed(1)
    net = RepSRNet(size_config("tiny", 2)).double()
    batches = [torch.rand(3, 3, 9, 11, dtype=torch.float64) for _ in range(4)]
    # Record what the first BN sees in the batch phase, batch by batch.
    first = norms(net)[0]
    seen: list[torch.Tensor] = []
    handle = first.register_forward_pre_hook(lambda m, args: seen.append(args[0].detach().clone()))
    set_bn_phase(net, BNPhase.POPULATION)  # must be restored afterwards
    n = estimate_population_stats(net, batches)
    handle.remove()
    assert n == 4 and bn_phase(net) == BNPhase.POPULATION
    everything = torch.cat([s.permute(1, 0, 2, 3).reshape(s.shape[1], -1) for s in seen], dim=1)
    assert torch.allclose(first.running_mean, everything.mean(dim=1), atol=1e-12)
    assert torch.allclose(first.running_var, everything.var(dim=1, unbiased=True), atol=1e-12)
