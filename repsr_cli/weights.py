"""Which model a name means: bundled models, the user model folder (platformdirs), the default per scale and
kind of input, and the clean/real blend of --denoise. Files are read by formats.deploy."""

from __future__ import annotations

from dataclasses import dataclass
from importlib import resources
from pathlib import Path

import platformdirs
import torch

from .errors import UserError
from .formats.deploy import read_deploy
from .model import DeployNet

MODEL_SUFFIXES = (".safetensors", ".pth", ".pt")


def user_model_dir() -> Path:
    return Path(platformdirs.user_data_dir("repsr")) / "models"


def bundled_dir() -> Path:
    """weights/ ships as the package repsr_cli.bundled; a bare source checkout finds it beside the code."""
    try:
        return Path(str(resources.files("repsr_cli.bundled")))
    except ModuleNotFoundError:
        return Path(__file__).resolve().parent.parent / "weights"


REAL_PREFIX = "repsr-real-"  # bundled models trained on realistic degradations (JPEG, video codecs, noise)


def is_real_model(name: str) -> bool:
    return name.startswith(REAL_PREFIX)


def default_model(scale: float, real: bool = False) -> ModelEntry:
    """The bundled model for a scale, from the clean family (`repsr-x{s}`) or, with `real`, the family
    trained on realistic degradations (`repsr-real-x{s}`): the exact scale when it ships; otherwise the
    family's model with the smallest scale >= `scale` (finished by a downscale), else the largest (finished
    by an upscale); among equals, the biggest network. A real request with no real model bundled falls
    back to the clean family. Always a bundled file: a user model of the same name (`-m` reaches it)
    cannot break the defaults."""
    prefix = REAL_PREFIX if real else "repsr-"
    bundled = [e for e in available_models() if e.source == "bundled" and is_real_model(e.name) == real]
    exact = [e for e in bundled if e.name == f"{prefix}x{scale:g}"]
    if exact:
        return exact[0]
    if not bundled:
        if real:
            return default_model(scale)
        raise UserError("no bundled models installed; pass -m with a model file")
    ranked = []
    for entry in bundled:
        cfg = load_model(entry.path).cfg
        ranked.append((cfg.scale < scale, abs(cfg.scale - scale), -cfg.channels * cfg.blocks, entry.name, entry))
    return min(ranked)[4]


def default_model_name(scale: float, real: bool = False) -> str:
    return default_model(scale, real).name


def interpolate(clean: DeployNet, real: DeployNet, strength: float) -> DeployNet:
    """Deep network interpolation (Wang et al., ESRGAN, arXiv 1809.00219): every weight (1 - s) * clean
    + s * real. Both are fused plain networks of one shape, so the blend is one too; s = 0 and s = 1 give
    the two models exactly (torch.lerp is exact at its ends)."""
    check_strength(strength)
    if clean.cfg != real.cfg:
        shapes = [f"x{c.scale} {c.blocks}x{c.channels}" for c in (clean.cfg, real.cfg)]
        raise UserError(f"cannot interpolate a {shapes[0]} and a {shapes[1]} model: their shapes differ")
    a, b = clean.state_dict(), real.state_dict()
    net = DeployNet(clean.cfg)
    net.load_state_dict({k: torch.lerp(a[k], b[k], strength) for k in a})
    return net.eval()


def check_strength(strength: float) -> None:
    if not 0 <= strength <= 1:
        raise UserError(f"--denoise must be between 0 and 1, got {strength:g}")


def denoise_model(scale: float, strength: float) -> tuple[DeployNet, str]:
    """The bundled clean and real models of one scale, interpolated; with the name to report."""
    check_strength(strength)
    real_entry = default_model(scale, real=True)
    if not is_real_model(real_entry.name):
        raise UserError("--denoise needs a bundled repsr-real model; none is installed")
    real = load_model(real_entry.path)
    clean_name = f"repsr-x{real.cfg.scale}"
    clean = [e for e in available_models() if e.source == "bundled" and e.name == clean_name]
    if not clean:
        raise UserError(f"--denoise needs the bundled {clean_name} beside {real_entry.name}")
    return interpolate(load_model(clean[0].path), real, strength), f"{clean_name}~{real_entry.name}@{strength:g}"


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


def load_model(spec: str | Path) -> DeployNet:
    """Any model a user can name -> the deploy network, in eval mode, float32, on the CPU."""
    path = resolve_model_path(spec)
    if not path.exists():
        raise UserError("file not found", path)
    net = read_deploy(path)
    bad = [k for k, v in net.state_dict().items() if not torch.isfinite(v).all()]
    if bad:  # NaN or inf weights give a black or garbage image: refuse them
        raise UserError(f"weights hold NaN or infinite values ({bad[0]}{' and more' if len(bad) > 1 else ''})", path)
    return net
