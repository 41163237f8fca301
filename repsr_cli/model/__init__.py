"""Networks: training-time RepSRNet, its blocks and BN phases, and the fused deploy network."""

from .batchnorm import BNPhase, bn_phase, estimate_population_stats, set_bn_phase
from .net import DeployNet, NetConfig, RepSRNet, fuse, size_config

__all__ = [
    "BNPhase",
    "DeployNet",
    "NetConfig",
    "RepSRNet",
    "bn_phase",
    "estimate_population_stats",
    "fuse",
    "size_config",
    "set_bn_phase",
]
