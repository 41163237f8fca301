"""Which model a name means: bundled models, the user model folder (platformdirs), the default per scale and
kind of input and size, and the blends of two families (--denoise: clean~real, --detail: real~sharp). Files are
read by formats.deploy, without torch where the format allows (the Upscaler's CPU engines need none)."""

from __future__ import annotations

import functools
import hashlib
import json
from dataclasses import asdict, dataclass
from importlib import resources
from pathlib import Path
from typing import TYPE_CHECKING

import numpy as np
import platformdirs

from ..errors import UserError
from ..formats.deploy import PlainNet, deploy_net, read_plain
from ..schema import MODEL_SIZES, number_text, size_name

if TYPE_CHECKING:
    from ..model import DeployNet

MODEL_SUFFIXES = (".safetensors", ".pth", ".pt", ".param")


def user_model_dir() -> Path:
    return Path(platformdirs.user_data_dir("repsr")) / "models"


def bundled_dir() -> Path:
    """weights/ ships as the package repsr_cli.bundled; a bare source checkout finds it beside the code."""
    try:
        return Path(str(resources.files("repsr_cli.bundled")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "weights"


# Families: clean (trained on clean downscales), real (on realistic degradations: JPEG, video codecs, noise) and
# sharp (fine-tuned adversarially from the real ones). Each bundled model's family is a row of MODEL_TABLE.
FAMILIES = ("clean", "real", "sharp")
MODEL_TABLE = "models.json"  # beside the bundled files: one row per bundled model (BundledModel's fields)

# The knobs that blend two families of one scale and size: knob -> (family at 0, family at 1).
BLENDS = {"denoise": ("clean", "real"), "detail": ("real", "sharp")}


# Without --size, a CPU takes the small models and other devices the biggest bundled: on a CPU a base model costs
# 4 to 6 times the small one's time for +0.07 to +0.10 dB (mean) on compressed inputs and +0.25 to +0.35 on
# clean ones (weights/scores.md, "Gain and cost"); on a GPU that cost is hidden. Images and video alike.
CPU_SIZES = ("tiny", "small")


def sizes_for(device_type: str, size: str | None) -> str | tuple[str, ...] | None:
    """The model sizes the defaults choose among: the one asked for, else those worth their cost on the device."""
    if size is not None:
        return size
    return CPU_SIZES if device_type == "cpu" else None


@dataclass(frozen=True)
class BundledModel:
    """A row of the bundled model table: what choosing a model needs, read without loading any weights."""

    name: str
    family: str
    size: str  # a model size (schema.MODEL_SIZES)
    scale: int
    channels: int
    blocks: int
    sha256: str  # of the .safetensors file
    run: str  # the run in history/ that made it

    @property
    def shape(self) -> tuple[int, int, int]:
        """(scale, channels, blocks), as PlainNet.shape."""
        return self.scale, self.channels, self.blocks


def bundled_table() -> dict[str, BundledModel]:
    """The bundled models by name (weights/models.json; tests/test_weights.py checks it against the files)."""
    path = bundled_dir() / MODEL_TABLE
    try:
        return _read_table(path, path.stat().st_mtime_ns)
    except OSError as exc:
        raise UserError(f"the bundled model table is missing ({exc.strerror}); reinstall repsr", path) from None


@functools.lru_cache(maxsize=4)
def _read_table(path: Path, mtime_ns: int) -> dict[str, BundledModel]:
    try:
        return {row["name"]: BundledModel(**row) for row in json.loads(path.read_text())}
    except (OSError, ValueError, TypeError, KeyError) as exc:
        raise UserError(f"the bundled model table is unreadable ({exc}); reinstall repsr", path) from None


def table_row(path: Path, family: str, run: str) -> dict[str, object]:
    """The table row of a bundled model file (benchmarks/ship_run.py writes it when it ships a run)."""
    net = load_plain(path)
    size = size_name(net.channels, net.blocks) or f"{net.blocks}x{net.channels}"
    digest = hashlib.sha256(Path(path).read_bytes()).hexdigest()
    return asdict(BundledModel(Path(path).stem, family, size, net.scale, net.channels, net.blocks, digest, run))


def model_family(name: str) -> str:
    """A bundled model's family; a model of the user's is treated as clean."""
    row = bundled_table().get(name)
    return row.family if row is not None else "clean"


def default_model(scale: float, family: str = "clean", size: str | tuple[str, ...] | None = None) -> ModelEntry:
    """The bundled model of a family for a scale (of the sizes `size` names, when given): the exact scale
    when it ships; otherwise the family's model with the smallest scale >= `scale` (finished by a downscale),
    else the largest (finished by an upscale); among equals, the biggest network. A real or sharp request
    with none of that family bundled falls back to the real, then the clean family. Always a bundled file:
    a user model of the same name (`-m` reaches it) cannot break the defaults."""
    candidates = []
    for entry in available_models():
        row = bundled_table().get(entry.name) if entry.source == "bundled" else None
        if row is None or row.family != family:
            continue
        if size is None or row.size in ((size,) if isinstance(size, str) else size):
            rank = (row.scale < scale, abs(row.scale - scale), -row.channels * row.blocks, entry.name)
            candidates.append((*rank, entry))
    if candidates:
        return min(candidates)[4]
    if family != "clean":
        return default_model(scale, "real" if family == "sharp" else "clean", size)
    if size is not None:
        named = size if isinstance(size, str) else " or ".join(size)
        raise UserError(f"no bundled {named} model for x{scale:g}; pass -m with a model file")
    raise UserError("no bundled models installed; pass -m with a model file")


def default_model_name(scale: float, family: str = "clean", size: str | tuple[str, ...] | None = None) -> str:
    return default_model(scale, family, size).name


def interpolate(start: PlainNet, end: PlainNet, strength: float) -> PlainNet:
    """Deep network interpolation (Wang et al., ESRGAN, arXiv 1809.00219): every weight (1 - s) * start
    + s * end. Both are fused plain networks of one shape, so the blend is one too; s = 0 and s = 1 give
    the two models exactly (the two-sided form torch.lerp uses, exact at its ends)."""
    if start.shape != end.shape:
        shapes = [f"x{n.scale} {n.blocks}x{n.channels}" for n in (start, end)]
        raise UserError(f"cannot interpolate a {shapes[0]} and a {shapes[1]} model: their shapes differ")
    s = np.float32(strength)

    def lerp(a: np.ndarray, b: np.ndarray) -> np.ndarray:
        return a + s * (b - a) if s < 0.5 else b - (b - a) * (np.float32(1) - s)

    return PlainNet(*start.shape, {k: lerp(a, end.state[k]) for k, a in start.state.items()})


def check_strength(strength: float, knob: str = "denoise") -> None:
    if not 0 <= strength <= 1:
        raise UserError(f"--{knob} must be between 0 and 1, got {number_text(strength)}")


def blend_model(
    knob: str, scale: float, strength: float, size: str | tuple[str, ...] | None = None
) -> tuple[PlainNet, str]:
    """The knob's two bundled families at one scale and size, interpolated; with the name to report
    (`start~end@knob=S`). The partner is the model of the other family with the same scale and network
    shape: a blend across sizes is refused. Without `size`, the biggest size that has both families (the
    clean family may ship no base model while the real one does)."""
    check_strength(strength, knob)
    first, last = BLENDS[knob]
    end_entry = default_model(scale, last, size)
    if model_family(end_entry.name) != last:
        asked = f"{size} " if isinstance(size, str) else ""
        hint = _use_sizes(first, last, int(scale) if float(scale).is_integer() else None)
        raise UserError(f"--{knob} needs a bundled {asked}{last} model for x{scale:g}; none ships{hint}")
    end = load_plain(end_entry.path)
    partners = _partners(first, end.shape)
    paired = _paired_sizes(first, last, end.scale)
    if not partners and size is None and paired:  # the biggest has no partner: a smaller size of its scale has
        end_entry = default_model(scale, last, paired)
        end = load_plain(end_entry.path)
        partners = _partners(first, end.shape)
    if not partners:
        shape = f"x{end.scale} {end.blocks}x{end.channels}"
        raise UserError(
            f"--{knob} needs a bundled {first} model of {end_entry.name}'s size ({shape}); none ships"
            f"{_use_sizes(first, last, end.scale)}"
        )
    start_entry = partners[0]
    net = interpolate(load_plain(start_entry.path), end, strength)
    return net, f"{start_entry.name}~{end_entry.name}@{knob}={number_text(strength)}"


def _bundled(family: str) -> list[ModelEntry]:
    return [e for e in available_models() if e.source == "bundled" and model_family(e.name) == family]


def _partners(family: str, shape: tuple[int, int, int]) -> list[ModelEntry]:
    """The bundled models of `family` with exactly this network shape and scale."""
    return [e for e in _bundled(family) if bundled_shape(e) == shape]


def _use_sizes(first: str, last: str, scale: int | None = None) -> str:
    """': use --size ...' naming the sizes at which both families of a blend ship (at `scale`, or any)."""
    scales = [scale] if scale is not None else sorted({bundled_shape(e)[0] for e in _bundled(last)})
    sizes = sorted({p for s in scales for p in _paired_sizes(first, last, s)}, key=list(MODEL_SIZES).index)
    return f": use --size {' or '.join(sizes)}" if sizes else ""


def _paired_sizes(first: str, last: str, scale: int) -> tuple[str, ...]:
    """The model sizes at which a bundled `last` model of `scale` has a `first` partner of the same shape."""
    shapes = {bundled_shape(e) for e in _bundled(first)}
    paired = (c for c in map(bundled_shape, _bundled(last)) if c[0] == scale and c in shapes)
    return tuple(sorted({size_name(channels, blocks) or "" for _, channels, blocks in paired} - {""}))


def bundled_shape(entry: ModelEntry) -> tuple[int, int, int]:
    """A bundled model's (scale, channels, blocks), from the table."""
    return bundled_table()[entry.name].shape


@dataclass(frozen=True)
class ModelEntry:
    name: str
    path: Path
    source: str  # "bundled" or "user"


def available_models() -> list[ModelEntry]:
    entries = []
    for source, folder in (("bundled", bundled_dir()), ("user", user_model_dir())):
        if folder.is_dir():
            for p in sorted(folder.iterdir()):
                if p.suffix in MODEL_SUFFIXES:
                    entries.append(ModelEntry(p.stem, p, source))
    return entries


def resolve_model_path(spec: str | Path) -> Path:
    """A path as given, or a model name looked up in the user folder, then among the bundled models."""
    path = Path(spec)
    if path.exists() or path.suffix in MODEL_SUFFIXES or len(path.parts) > 1:
        return path
    for entry in sorted(available_models(), key=lambda e: e.source != "user"):
        if entry.name == str(spec):
            return entry.path
    known = ", ".join(sorted({e.name for e in available_models()})) or "none"
    raise UserError(f"no such model file or name (known names: {known})", spec)


def load_plain(spec: str | Path) -> PlainNet:
    """Any model a user can name -> its weights (float32 arrays; torch is imported only for PyTorch files)."""
    path = resolve_model_path(spec)
    if not path.exists():
        raise UserError("file not found", path)
    net = read_plain(path)
    bad = [k for k, v in net.state.items() if not np.isfinite(v).all()]
    if bad:  # NaN or inf weights give a black or garbage image: refuse them
        raise UserError(f"weights hold NaN or infinite values ({bad[0]}{' and more' if len(bad) > 1 else ''})", path)
    return net


def load_model(spec: str | Path) -> DeployNet:
    """Any model a user can name -> the deploy network, in eval mode, float32, on the CPU."""
    return deploy_net(load_plain(spec))
