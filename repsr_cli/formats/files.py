"""Files on disk that both sides of the flow use: atomic writes, and torch files read without running code."""

from __future__ import annotations

import hashlib
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

from ..errors import UserError


def _umask() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return mask


NAME_MAX = 255  # bytes per file name on the file systems users have (ext4, APFS, NTFS in UTF-16 units)
TEMP_RANDOM = 8  # the characters mkstemp adds


def sidecar(path: Path, tag: str, room: int = 0) -> Path:
    """A hidden file beside `path` named after it (`.NAME` + `tag`), kept within NAME_MAX bytes with `room`
    to spare: a long name is cut and a hash of it added, so two long names never share a sidecar."""
    path = Path(path)
    name = f".{path.name}{tag}"
    if len(name.encode()) + room <= NAME_MAX:
        return path.with_name(name)
    digest = hashlib.sha1(path.name.encode()).hexdigest()[:12]
    keep = NAME_MAX - room - len(tag.encode()) - len(digest) - 2
    stem = path.name.encode()[:keep].decode(errors="ignore")
    return path.with_name(f".{stem}~{digest}{tag}")


def check_name(path: Path) -> None:
    """First of all for an output: the OS refuses even to look up a name past NAME_MAX."""
    size = len(Path(path).name.encode())
    if size > NAME_MAX:
        raise UserError(f"the file name is {size} bytes; file systems take at most {NAME_MAX}", path)


def check_output(path: Path, overwrite: bool = False, source: Path | None = None, example: str = "") -> None:
    """An output can be written where it is named, before any work: not a folder, in a folder that exists and
    takes new files, a name the file system takes, not the input, not an existing file unless `overwrite`.
    The one check of every command that writes a named file (`example`: a file name to suggest for a folder)."""
    path = Path(path)
    check_name(path)
    if path.is_dir():
        hint = f" (for example {path / example})" if example else ""
        raise UserError(f"is a folder; name the output file{hint}", path)
    if not path.parent.is_dir():
        raise UserError("the output folder does not exist", path.parent)
    if source is not None and path.exists() and path.resolve() == Path(source).resolve():
        raise UserError("output would overwrite the input", path)
    if path.exists() and not overwrite:
        raise UserError("exists already (--overwrite replaces it)", path)
    if not os.access(path.parent, os.W_OK | os.X_OK):
        raise UserError("the output folder is not writable", path.parent)


def atomic_write(path: Path, write: Any) -> None:
    """Call `write(tmp_path)`, then rename over `path`: readers never see a half-written file."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    temp = sidecar(path, ".", room=TEMP_RANDOM + len(".tmp"))  # a long name's temporary name still fits
    fd, tmp = tempfile.mkstemp(prefix=temp.name, suffix=".tmp", dir=path.parent)
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
    import torch  # here: the atomic writes and locks above serve commands that never load torch

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
