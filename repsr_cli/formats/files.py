"""Files on disk that both sides of the flow use: atomic writes, and torch files read without running code."""

from __future__ import annotations

import os
import pickle
import re
import tempfile
import warnings
import zipfile
from collections.abc import Iterator
from contextlib import contextmanager
from pathlib import Path
from typing import Any

import torch

from ..errors import UserError


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


MAX_UNPACKED = 2**30  # bytes a torch file may unpack to: 200 times our largest checkpoint


def _check_unpacked_size(path: Path) -> None:
    """A torch file is a zip; what its entries unpack to is in the zip's directory, read before anything is
    unpacked, so a small file that would fill memory (a zip bomb) is refused at no cost. The pre-1.6 format
    (a bare pickle stream, whose sizes cannot be read ahead) is refused: every compact SR model since 2021
    is a zip."""
    if not zipfile.is_zipfile(path):
        with open(path, "rb") as fh:
            legacy = fh.read(2) == b"\x80\x02"  # pickle protocol 2: how torch.save wrote files before 1.6
        if legacy:
            raise UserError("an old-format (pre-1.6) PyTorch file: resave it with a current torch.save", path)
        return
    try:
        with zipfile.ZipFile(path) as archive:
            total = sum(info.file_size for info in archive.infolist())
    except (zipfile.BadZipFile, OSError, ValueError):
        return  # torch.load names the damage
    if total > MAX_UNPACKED:
        raise UserError(f"would unpack to {total / 2**30:.1f} GiB, more than any model needs; refusing it", path)


def read_torch_file(path: Path) -> Any:
    """torch.load restricted to tensors and plain containers; every failure becomes a one-line UserError."""
    path = Path(path)
    if not path.exists():
        raise UserError("file not found", path)
    if not path.is_file():
        raise UserError("not a file", path)
    _check_unpacked_size(path)
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch warns about pickle protocols it still reads safely
            return torch.load(path, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        # torch words it "Unsupported global: GLOBAL x" (2.4-2.5) or "unsupported GLOBAL x whose module" (2.6 on)
        found = re.search(r"[Uu]nsupported (?:global: )?GLOBAL ([\w.]+)", str(exc))
        if found is None:
            raise UserError("not a PyTorch file (corrupt, or another kind of file)", path) from None
        raise UserError(
            f"refusing to load: it holds a Python object ({found.group(1)}), not only tensors", path
        ) from None
    except (RuntimeError, EOFError, zipfile.BadZipFile, ValueError, OSError) as exc:
        raise UserError(f"not a readable PyTorch file (corrupt or truncated?): {type(exc).__name__}", path) from None
    except Exception:  # torch's legacy reader fails on arbitrary bytes with KeyError, IndexError, ...
        raise UserError("not a PyTorch file (corrupt, or another kind of file)", path) from None


class Busy(Exception):
    """The lock is held by another live process."""


@contextmanager
def exclusive(path: Path) -> Iterator[None]:
    """Hold an advisory lock on `path` for the block; Busy if another process holds it. The OS drops the lock
    when its process ends, however it ends, so a killed run never holds it for ever (unlike a pid file)."""
    path = Path(path)
    fh = open(path, "a+b")  # noqa: SIM115 - held open for the block
    try:
        if os.name == "nt":
            import msvcrt

            msvcrt.locking(fh.fileno(), msvcrt.LK_NBLCK, 1)
        else:
            import fcntl

            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
    except OSError:
        fh.close()
        raise Busy(str(path)) from None
    try:
        yield
    finally:
        path.unlink(missing_ok=True)
        fh.close()
