"""Training checkpoints: atomic writes, safe reads (no arbitrary unpickling), everything resume needs."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
import zipfile
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError
from ..model import NetConfig, RepSRNet

FORMAT = "repsr-train"
VERSION = 1


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)`, then rename over `path`: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    os.close(fd)
    try:
        write(tmp)
        os.chmod(tmp, 0o666 & ~_umask())  # mkstemp creates 0600; give the file the usual permissions
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def save_checkpoint(path: Path, state: dict[str, Any]) -> None:
    payload = {"format": FORMAT, "version": VERSION, **state}
    atomic_write(Path(path), lambda tmp: torch.save(payload, tmp))


def read_torch_file(path: Path) -> Any:
    """torch.load restricted to tensors and plain containers; every failure becomes a one-line UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if not path.is_file():
        raise UserError("not a file", path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols it still reads safely
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        found = re.search(r"Unsupported global: GLOBAL ([\w.]+)", str(exc))
        what = found.group(1) if found else "unsupported content"
        raise UserError(f"refusing to load: it holds a Python object ({what}), not only tensors", path) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UserError(f"not a readable PyTorch file (corrupt or truncated?): {type(exc).__name__}", path) from None


def is_checkpoint(obj: Any) -> bool:
    return isinstance(obj, dict) and obj.get("format") == FORMAT


def load_checkpoint(path: Path) -> dict[str, Any]:
    ckpt = read_torch_file(path)
    if not is_checkpoint(ckpt):
        raise UserError("not a repsr training checkpoint", path)
    if ckpt.get("version", 0) > VERSION:
        raise UserError(f"checkpoint format version {ckpt['version']} is newer than this repsr", path)
    return ckpt


def model_from_checkpoint(ckpt: dict[str, Any], path: Path | str = "checkpoint") -> RepSRNet:
    try:
        net = RepSRNet(NetConfig.from_dict(ckpt["config"]))
        net.load_state_dict(ckpt["model"])
    except (KeyError, TypeError, ValueError, RuntimeError) as exc:
        raise UserError(f"checkpoint does not describe a RepSR network: {str(exc).splitlines()[0]}", path) from None
    return net
