"""The training checkpoint format: what a run saves, everything exact resume needs, and the network in it.

Written atomically and read without unpickling code (formats/files.py); `train` writes it, `convert`, `upscale -m`
and `--init-from` read it.
"""

from __future__ import annotations

import errno
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..model import NetConfig, RepSRNet
from .files import atomic_write, read_torch_file

FORMAT = "repsr-train"
# 2: adversarial runs add "ema" (the generator EMA, what deploys) and "objective" (discriminator + optimizer).
VERSION = 2


RESUME_KEYS = ("config", "train", "model", "optimizer", "iter", "torch_rng")


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    """Written to a temporary file and renamed: a failed write (a full disk) leaves the last good one."""
    payload = {"format": FORMAT, "version": VERSION, **state}
    try:
        atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))
    except (OSError, RuntimeError) as exc:
        full = getattr(exc, "errno", None) == errno.ENOSPC or "No space left" in str(exc)
        reason = (
            "disk full" if full else f"cannot write ({str(exc).splitlines()[0] if str(exc) else type(exc).__name__})"
        )
        raise UserError(f"{reason}: checkpoint not written; the last good checkpoint is kept", path) from None


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = read_torch_file(path)
    if not is_checkpoint(ckpt):
        raise UserError("not a repsr training checkpoint", path)
    check_fields(ckpt, path)
    return ckpt


def check_fields(ckpt: dict[str, Any], path: Path | str) -> None:
    """Every reader of a checkpoint calls this first: types as we write them, a version we know."""
    problem = _field_problem(ckpt)
    if problem:
        raise UserError(f"damaged checkpoint: {problem}", path)
    if ckpt.get("version", 0) > VERSION:
        raise UserError(f"checkpoint format version {ckpt['version']} is newer than this repsr", path)


def _field_problem(ckpt: dict[str, Any]) -> str | None:
    """The first field whose type is not what we write: a file edited or made by something else is refused
    here, in one line, rather than failing deep inside the network or the trainer."""
    integer = lambda v: isinstance(v, int) and not isinstance(v, bool)  # noqa: E731
    if not integer(ckpt.get("version", 0)):
        return f"version {ckpt.get('version')!r} is not an integer"
    if "iter" in ckpt and not (integer(ckpt["iter"]) and ckpt["iter"] >= 0):
        return f"iter {ckpt['iter']!r} is not an iteration"
    for key in ("config", "train", "model", "optimizer", "ema", "objective"):
        if key in ckpt and not isinstance(ckpt[key], dict):
            return f"{key} is a {type(ckpt[key]).__name__}, not a mapping"
    defaults = NetConfig()
    for name, value in ckpt.get("config", {}).items():
        expected = type(getattr(defaults, name, None))
        if hasattr(defaults, name) and (type(value) is not expected):
            return f"config {name} {value!r}: expected a value of type {expected.__name__}"
    for key in ("model", "ema"):
        bad = [k for k, v in ckpt.get(key, {}).items() if not isinstance(k, str) or not isinstance(v, torch.Tensor)]
        if bad:
            return f"{key} holds {bad[0]!r}, not a named tensor"
    return None


def lineage_head(ckpt: dict[str, Any]) -> dict[str, Any]:
    """What a later run needs to start from this one (`--init-from`, `convert`): the network and its record,
    without the optimizer, discriminator and RNG state that only exact resume uses (two thirds of a base
    checkpoint, and every committed byte stays in the history)."""
    return {k: v for k, v in ckpt.items() if k not in ("optimizer", "objective", "torch_rng")}


def check_resumable(ckpt: dict[str, Any], path: Path | str) -> None:
    """Everything exact resume needs is there; otherwise say what is missing."""
    missing = [key for key in RESUME_KEYS if key not in ckpt]
    if missing:
        raise UserError(f"checkpoint cannot be resumed: it has no {', '.join(missing)}", path)


def checkpoint_warning(ckpt: dict[str, Any]) -> str | None:
    """What a user must hear before fusing this checkpoint: it stopped before its BN switch, or its last
    validation scored below bicubic upscaling of the same images."""
    train, model = ckpt.get("train"), ckpt.get("model")
    if not isinstance(train, dict) or not isinstance(model, dict):
        return None
    phases = [v for k, v in model.items() if isinstance(k, str) and k.endswith(".phase")]
    if train.get("bn") == "switch" and phases and int(phases[0]) == 0:
        return (
            f"the run stopped at iteration {ckpt.get('iter')} before its BN switch: BatchNorm still uses running "
            "averages, not population statistics; resume it past the switch before using the model"
        )
    last, floor = ckpt.get("last_psnr"), ckpt.get("bicubic_psnr")
    if isinstance(last, float) and isinstance(floor, float) and last < floor:
        return f"its last validation scored {last:.2f} dB, below bicubic upscaling's {floor:.2f} dB on the same images"
    return None


def model_from_checkpoint(ckpt: dict[str, Any], path: Path | str = "checkpoint", ema: bool = True) -> RepSRNet:
    """The run's network: its generator EMA when it keeps one (what a sharp run ships), unless `ema` is off
    (resume needs the online weights)."""
    try:
        net = RepSRNet(NetConfig.from_dict(ckpt["config"]))
    except (KeyError, TypeError, ValueError) as exc:
        raise UserError(f"checkpoint does not describe a RepSR network: {exc}", path) from None
    key = "ema" if ema and isinstance(ckpt.get("ema"), dict) else "model"
    load_network_state(net, ckpt.get(key), path)
    return net


def load_network_state(net: torch.nn.Module, state: Any, path: Path | str, what: str = "model weights") -> None:
    """Load `state` into `net`, naming the first missing, unexpected or misshapen tensor (or, with none at all,
    `what` was expected)."""
    if not isinstance(state, dict):
        raise UserError(f"checkpoint holds no {what}", path)
    own = net.state_dict()
    missing, unexpected = sorted(set(own) - set(state)), sorted(set(state) - set(own), key=str)
    wrong = [k for k in own if k in state and getattr(state[k], "shape", None) != own[k].shape]
    for problem, keys in (("misses the tensor", missing), ("has the unexpected tensor", unexpected)):
        if keys:
            more = f" and {len(keys) - 1} more" if len(keys) > 1 else ""
            raise UserError(f"checkpoint {problem} {keys[0]!r}{more}", path)
    if wrong:
        raise UserError(
            f"checkpoint tensor {wrong[0]!r} has shape {tuple(state[wrong[0]].shape)}, "
            f"the network needs {tuple(own[wrong[0]].shape)}",
            path,
        )
    net.load_state_dict(state)
