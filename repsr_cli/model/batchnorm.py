"""BatchNorm with training phases, the core of RepSR's training recipe.

RepSR (Wang et al., 2022, Sec. 3.3) trains with mini-batch statistics, then normalises with population
statistics for the last part of training so that training and inference see the same normalisation.
The phase is a buffer, so it survives `.train()`/`.eval()` and checkpoint round trips.
"""

from __future__ import annotations

from collections.abc import Callable, Iterable
from enum import IntEnum

import torch
import torch.nn.functional as F
from torch import nn


class BNPhase(IntEnum):
    BATCH = 0
    POPULATION = 1

    @property
    def label(self) -> str:
        return self.name.lower()


class PhasedBatchNorm2d(nn.BatchNorm2d):
    """BatchNorm2d whose use of running statistics is set by its phase, not by `self.training`."""

    def __init__(self, num_features: int, eps: float = 1e-5, momentum: float = 0.1) -> None:
        super().__init__(num_features, eps=eps, momentum=momentum)
        self.register_buffer("phase", torch.tensor(int(BNPhase.BATCH)))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        use_batch_stats = self.training and int(self.phase) == BNPhase.BATCH
        # Under autocast (fp32 parameters, low-precision activations) statistics are computed in fp32:
        # low-precision variances are unreliable. A module cast to low precision as a whole runs as it is.
        low = x.dtype in (torch.float16, torch.bfloat16) and self.weight.dtype == torch.float32
        out = F.batch_norm(
            x.float() if low else x,
            self.running_mean,
            self.running_var,
            self.weight,
            self.bias,
            training=use_batch_stats,
            momentum=self.momentum,
            eps=self.eps,
        )
        if use_batch_stats:
            self.num_batches_tracked.add_(1)
        return out.to(x.dtype) if low else out


def phased_norms(model: nn.Module) -> list[PhasedBatchNorm2d]:
    return [m for m in model.modules() if isinstance(m, PhasedBatchNorm2d)]


def set_bn_phase(model: nn.Module, phase: BNPhase) -> None:
    for bn in phased_norms(model):
        bn.phase.fill_(int(phase))


def bn_phase(model: nn.Module) -> BNPhase | None:
    """The model's phase, or None when it has no phased BatchNorm (e.g. a `--bn none` model)."""
    phases = {int(bn.phase) for bn in phased_norms(model)}
    if not phases:
        return None
    if len(phases) > 1:
        raise RuntimeError(f"BatchNorm layers disagree on their phase: {sorted(phases)}")
    return BNPhase(phases.pop())


Reducer = Callable[[torch.Tensor], torch.Tensor]


@torch.no_grad()
def estimate_population_stats(
    model: nn.Module,
    batches: Iterable[torch.Tensor],
    reduce: Reducer | None = None,
) -> int:
    """Set every phased BN's running statistics to the exact mean and variance over all `batches`.

    The network runs as in the batch phase, so each layer sees the inputs it saw during training
    (as torch.optim.swa_utils.update_bn does), but sums are accumulated in float64 over every pixel
    instead of an exponential moving average. `reduce` sums a tensor across processes (DDP).
    Returns the number of batches used.
    """
    norms = phased_norms(model)
    if not norms:
        return 0
    sums: dict[PhasedBatchNorm2d, list[torch.Tensor]] = {}

    def accumulate(bn: nn.Module, args: tuple[torch.Tensor, ...]) -> None:
        x = args[0].detach().to(torch.float64)
        acc = sums.setdefault(bn, [torch.zeros(3, bn.num_features, dtype=torch.float64, device=x.device)])[0]
        acc[0] += x.sum(dim=(0, 2, 3))
        acc[1] += (x * x).sum(dim=(0, 2, 3))
        acc[2] += x.numel() // x.shape[1]

    was_training = model.training
    saved_phase = bn_phase(model)
    set_bn_phase(model, BNPhase.BATCH)
    model.train()
    handles = [bn.register_forward_pre_hook(accumulate) for bn in norms]
    count = 0
    try:
        for batch in batches:
            model(batch)
            count += 1
    finally:
        for h in handles:
            h.remove()
        set_bn_phase(model, saved_phase)
        model.train(was_training)
    if count == 0:
        raise ValueError("estimate_population_stats needs at least one batch")
    for bn in norms:
        acc = sums[bn][0]
        if reduce is not None:
            acc = reduce(acc)
        total, total_sq, n = acc[0], acc[1], acc[2]
        mean = total / n
        var = (total_sq - n * mean * mean) / (n - 1)  # unbiased, as BatchNorm's running_var
        bn.running_mean.copy_(mean.to(bn.running_mean.dtype))
        bn.running_var.copy_(var.clamp_min(0).to(bn.running_var.dtype))
    return count
