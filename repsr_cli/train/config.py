"""Training configuration: one dataclass with defaults, saved as RUN_DIR/config.json."""

from __future__ import annotations

import json
import math
from dataclasses import MISSING, asdict, dataclass, field, fields, replace
from pathlib import Path
from typing import TYPE_CHECKING

from ..data.presets import DEGRADATIONS
from ..errors import UserError
from ..runtime import PRECISION_CHOICES
from ..schema import BLOCK_NAMES, BN_MODES, MODEL_SIZES, SCHEDULES
from .recipes import RECIPES

if TYPE_CHECKING:
    from ..model import NetConfig

CHOICES = {
    "size": tuple(MODEL_SIZES),
    "block": BLOCK_NAMES,
    "precision": PRECISION_CHOICES,
    "bn": BN_MODES,
    "schedule": SCHEDULES,
    "loss": RECIPES,  # the table itself: benchmarks/sharp_recipes.py adds candidate rows in-process
    "degradation": tuple(DEGRADATIONS),
}


OPTIONAL = {"lr_data": str, "max_hr_side": int, "val": str, "init_from": str}  # None or this kind
AT_LEAST_ONE = ("scale", "iters", "batch", "patch", "expand", "bn_batches", "ckpt_every", "log_every")
NOT_NEGATIVE = ("warmup", "val_every", "seed")


def _flag(name: str) -> str:
    return name.replace("_", "-")


@dataclass
class TrainConfig:
    data: str
    out: str
    scale: int = 4
    size: str = "tiny"  # the model size (schema.MODEL_SIZES)
    block: str = "repsr"
    bn: str = "switch"  # switch | batch | none
    expand: int = 2
    iters: int = 100_000
    batch: int = 16
    patch: int = 48  # LR patch side
    lr: float = 5e-4
    min_lr: float = 1e-6
    schedule: str = "cosine"  # cosine | multistep | constant (after warm-up: a fine-tune that can be lengthened)
    milestones: list[float] = field(default_factory=lambda: [0.5, 0.75, 0.9])  # fractions of iters
    gamma: float = 0.5
    warmup: int = 0
    # fraction of iters (<= 1) or an iteration (> 1); 0: population statistics from the first step, for a fine-tune
    # of a model that had its batch phase already (the sharp runs: docs/sharp.md)
    bn_switch: float = 0.8
    bn_batches: int = 100
    seed: int = 0
    lr_data: str | None = None
    max_hr_side: int | None = None
    val: str | None = None
    val_every: int = 1000
    ckpt_every: int = 500
    log_every: int = 50
    precision: str = "auto"  # auto | fp32 | bf16 | fp16
    init_from: str | None = None  # checkpoint whose body initialises this run (all but the last conv)
    loss: str = "l1"  # a key of recipes.RECIPES
    degradation: str = "bicubic"  # a key of data.presets.DEGRADATIONS: how LR patches are made

    def check(self) -> None:
        """Reject a misspelt choice or an impossible number before anything is read or written, rather than
        failing later or silently training something else."""
        self._check_types()
        for name, allowed in CHOICES.items():
            value = getattr(self, name)
            if value not in allowed:
                raise UserError(f"unknown --{_flag(name)} {value!r} (use {', '.join(allowed)})")
        for name in AT_LEAST_ONE:
            if not getattr(self, name) >= 1:
                raise UserError(f"--{_flag(name)} must be at least 1, got {getattr(self, name)}")
        for name in NOT_NEGATIVE:
            if not getattr(self, name) >= 0:
                raise UserError(f"--{_flag(name)} must be 0 or more, got {getattr(self, name)}")
        if self.seed >= 2**63:  # torch's generators take a signed 64-bit seed
            raise UserError(f"--seed must be below 2**63, got {self.seed}")
        if not 0 < self.lr < 1 or not 0 <= self.min_lr <= self.lr:
            raise UserError(f"--lr must be in (0, 1) and above the minimum {self.min_lr:g}, got {self.lr:g}")
        if self.max_hr_side is not None and not self.max_hr_side >= self.patch * self.scale:
            raise UserError(
                f"--max-hr-side must be at least the HR patch side ({self.patch} x {self.scale} ="
                f" {self.patch * self.scale}), or every image shrinks below a patch; got {self.max_hr_side}"
            )
        if not 0 <= self.bn_switch < math.inf:
            raise UserError(f"--bn-switch must be a fraction (0 to 1) or an iteration, got {self.bn_switch:g}")
        if RECIPES[self.loss].adversarial:
            from ..model.discriminator import MIN_SIDE  # torch: only for a run that trains one

            if self.patch * self.scale < MIN_SIDE:
                raise UserError(
                    f"--loss {self.loss}: the discriminator needs HR patches of at least {MIN_SIDE} pixels a side;"
                    f" --patch {self.patch} at x{self.scale} gives {self.patch * self.scale}: use --patch"
                    f" {-(-MIN_SIDE // self.scale)} or more"
                )

    def _check_types(self) -> None:
        """Each field holds its kind of value (a config.json or checkpoint may have been edited by hand)."""
        for f in fields(self):
            value = getattr(self, f.name)
            kind = OPTIONAL.get(f.name) or (type(f.default) if f.default not in (MISSING, None) else None)
            if kind is None or (value is None and f.name in OPTIONAL):
                continue
            kinds = (int, float) if kind is float else (kind,)
            if isinstance(value, bool) != (kind is bool) or not isinstance(value, kinds):
                raise UserError(f"--{_flag(f.name)} {value!r}: expected a value of type {kind.__name__}")

    def net_config(self) -> NetConfig:
        from ..model import size_config

        return size_config(self.size, self.scale, block=self.block, bn=self.bn != "none", expand=self.expand)

    @property
    def switch_iter(self) -> int | None:
        """Iteration at which BN switches to population statistics, or None when it never does."""
        if self.bn != "switch":
            return None
        at = self.bn_switch * self.iters if self.bn_switch <= 1 else self.bn_switch
        return min(self.iters, int(round(at)))

    def lr_at(self, it: int) -> float:
        """Learning rate for iteration `it` (0-based): a pure function, so resume needs no scheduler state."""
        if it < self.warmup:
            return self.lr * (it + 1) / self.warmup
        if self.schedule == "cosine":
            t = (it - self.warmup) / max(1, self.iters - self.warmup)
            return self.min_lr + 0.5 * (self.lr - self.min_lr) * (1 + math.cos(math.pi * min(1.0, t)))
        if self.schedule == "constant":
            return self.lr
        passed = sum(it >= m * self.iters for m in self.milestones)
        return self.lr * self.gamma**passed

    def extended_to(self, iters: int, done: int) -> TrainConfig:
        """This run planned for `iters` iterations instead, when that changes none of the `done` steps taken:
        each keeps its learning rate and BN phase, so (batches being a function of the iteration alone) the
        extended run is exactly the longer run trained from the start."""
        if iters == self.iters:
            return self
        if iters < done:
            raise UserError(f"--iters {iters}: the run is at iteration {done} already")
        longer = replace(self, iters=iters)
        if any(self.lr_at(it) != longer.lr_at(it) for it in range(done)):
            raise UserError(
                f"--iters {iters} would change the learning rate of iterations already trained (the {self.schedule} "
                "schedule scales with the run's length): train on in a new run with --init-from"
            )
        switches = (self.switch_iter, longer.switch_iter)
        if switches[0] is not None and switches[1] is not None and min(switches[0], done) != min(switches[1], done):
            raise UserError(
                f"--iters {iters} would move the BN switch (at {self.switch_iter}) before iterations already "
                "trained: set --bn-switch as an iteration, or train on in a new run with --init-from"
            )
        return longer

    def to_dict(self) -> dict[str, object]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict[str, object]) -> TrainConfig:
        names = {f.name for f in fields(cls)}
        return cls(**{k: v for k, v in current_names(data).items() if k in names})


RENAMED = {"preset": "size"}  # setting names of older runs' config.json and checkpoints -> today's


def current_names(recorded: dict[str, object]) -> dict[str, object]:
    return {RENAMED.get(key, key): value for key, value in recorded.items()}


def init_run_name(spec: str) -> str:
    """The run an --init-from names: the name itself, or the run folder of a path to its checkpoint
    (`.../RUN/checkpoints/last.pth`, which stays the run's name when its folder moves)."""
    path = Path(spec)
    return path.parent.parent.name if path.parent.name == "checkpoints" else spec


def replayed(path: Path, options: TrainConfig, given: set[str]) -> TrainConfig:
    """The run recorded in `path` (its config.json), with the fields set on the command line (`given`) taken
    from `options`: `repsr train --config history/RUN/config.json` trains that run again."""
    try:
        recorded = json.loads(Path(path).read_text())
    except (OSError, ValueError) as exc:
        raise UserError(f"cannot read this run configuration: {exc}", path) from None
    names = {f.name for f in fields(TrainConfig)}
    if not isinstance(recorded, dict) or not {"data", "out"} <= recorded.keys():
        raise UserError("not a run configuration (the config.json of a run folder)", path)
    if unknown := sorted(set(current_names(recorded)) - names):
        raise UserError(f"unknown settings {', '.join(unknown)} (a newer repsr's run?)", path)
    return replace(TrainConfig.from_dict(recorded), **{name: getattr(options, name) for name in given})
