"""The work folder of a video job: finished segments and the manifest that lets `--resume` continue after them.

A video is upscaled into independently decodable segments (each its own encoder run, so it starts with a
keyframe and no frame refers across a seam), written beside the output in `.NAME.repsr-work/`. A segment is
renamed into place only once its encoder has finished, and the manifest is rewritten atomically after it, so
whatever stops the job (Ctrl-C, SIGTERM, SIGKILL, a power cut) leaves complete segments and a manifest that
counts exactly them. The manifest also holds what made those frames (source, model, settings): a resume with
anything else is refused, because its frames would not match the ones already kept.
"""

from __future__ import annotations

import hashlib
import json
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from ...errors import UserError
from ...formats.deploy import PlainNet
from ...formats.files import atomic_write, sidecar

MANIFEST = "manifest.json"
VERSION = 1
# Seconds of video per segment: what an interruption can cost at most. Short segments (HLS streams commonly
# use 2 to 6 s) cost a keyframe each; at 2 s that is a few percent of the bitrate of a typical encode.
SEGMENT_SECONDS = 2.0


def work_folder(out: Path) -> Path:
    """Hidden, beside the output and named after it, so two outputs never share one."""
    return sidecar(out, ".repsr-work")


def segment_path(folder: Path, index: int) -> Path:
    return folder / f"seg-{index:05d}.mkv"


def weights_digest(net: PlainNet) -> str:
    """sha256 of the network's float32 weights: the same file under another name resumes, a changed one not."""
    digest = hashlib.sha256()
    for key, value in sorted(net.state.items()):
        digest.update(key.encode())
        digest.update(np.ascontiguousarray(value, dtype=np.float32).tobytes())
    return digest.hexdigest()


def source_identity(src: Path) -> dict[str, object]:
    stat = src.stat()
    return {"path": str(src.resolve()), "bytes": stat.st_size, "mtime_ns": stat.st_mtime_ns}


@dataclass
class Manifest:
    """What made the kept frames (`identity`), and how many frames each finished segment holds."""

    identity: dict[str, object]
    segments: list[int] = field(default_factory=list)

    @property
    def frames_done(self) -> int:
        return sum(self.segments)

    def save(self, folder: Path) -> None:
        data = {"version": VERSION, "identity": self.identity, "segments": self.segments}
        atomic_write(folder / MANIFEST, lambda tmp: Path(tmp).write_text(json.dumps(data, indent=1)))

    @classmethod
    def load(cls, folder: Path) -> Manifest | None:
        """None when the folder holds no manifest (a job stopped before its first segment finished)."""
        path = folder / MANIFEST
        if not path.exists():
            return None
        try:
            data = json.loads(path.read_text())
            if data.get("version") != VERSION:
                raise ValueError(f"version {data.get('version')!r}")
            manifest = cls(dict(data["identity"]), [int(n) for n in data["segments"]])
        except (OSError, ValueError, KeyError, TypeError) as exc:
            raise UserError(f"unreadable resume manifest ({exc}); delete the folder to start over", path) from None
        missing = [segment_path(folder, i).name for i in range(len(manifest.segments))]
        missing = [name for name in missing if not (folder / name).exists()]
        if missing:
            raise UserError(f"the manifest names {missing[0]}, which is gone; delete the folder to start over", folder)
        return manifest


def mismatch(kept: dict[str, object], wanted: dict[str, object], prefix: str = "") -> str | None:
    """The first setting that differs between the kept frames and this run, in words; None if all agree."""
    for key in sorted(set(kept) | set(wanted)):
        a, b = kept.get(key), wanted.get(key)
        if isinstance(a, dict) and isinstance(b, dict):
            found = mismatch(a, b, f"{prefix}{key} ")
            if found:
                return found
        elif a != b:
            return f"the kept frames were made with {prefix}{key} {a!r}, this run asks for {b!r}"
    return None


def open_work(folder: Path, identity: dict[str, object], resume: bool, out: Path) -> Manifest:
    """The manifest to continue from (empty for a fresh job). Without `resume`, an existing work folder is
    refused, never reused or deleted behind the user's back; with it, other settings or a changed source are."""
    kept = Manifest.load(folder) if folder.exists() else None
    if folder.exists() and not resume:
        done = f"{kept.frames_done} upscaled frames" if kept else "no finished segment"
        raise UserError(
            f"an interrupted job left {folder.name} ({done}): add --resume to continue it, or delete that folder"
            " to start over",
            out,
        )
    if kept is not None:
        reason = mismatch(kept.identity, identity)
        if reason:
            raise UserError(f"cannot resume: {reason}; rerun with the same settings, or delete {folder}", out)
        for stale in folder.glob("*.partial.mkv"):  # a segment a killed job did not finish
            stale.unlink()
        return kept
    if folder.exists():  # resume asked for, but no segment finished: start over in it
        shutil.rmtree(folder)
    folder.mkdir()
    manifest = Manifest(identity)
    manifest.save(folder)
    return manifest


def concat_list(folder: Path, count: int) -> Path:
    """The concat demuxer's list of the finished segments (names relative to the list, so any folder name
    works)."""
    path = folder / "segments.txt"
    path.write_text("".join(f"file '{segment_path(folder, i).name}'\n" for i in range(count)))
    return path
