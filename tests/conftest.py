from __future__ import annotations

import contextlib
import io
import json
import signal
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
from PIL import Image

SHARED = Path(__file__).resolve().parents[1].parent / "shared" / "data"


def shared_path(*parts: str) -> Path:
    """A folder of ../shared/data, or skip the test where it is absent (users do not have it)."""
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.skip(f"{path} not present")
    return path


def synthetic_image(rng: np.random.Generator, h: int, w: int) -> np.ndarray:
    """Smooth random colour blobs plus edges: enough structure to train on for a few steps."""
    y, x = np.mgrid[0:h, 0:w] / max(h, w)
    img = np.zeros((h, w, 3))
    for c in range(3):
        for _ in range(3):
            fx, fy, ph = rng.uniform(1, 12, 2).tolist() + [rng.uniform(0, 6)]
            img[..., c] += np.sin(2 * np.pi * (fx * x + fy * y) + ph)
    img += (x > rng.uniform(0.2, 0.8))[..., None]
    img = (img - img.min()) / (np.ptp(img) + 1e-9)
    return (img * 255).astype(np.uint8)


@pytest.fixture(scope="session", autouse=True)
def own_cache(tmp_path_factory) -> None:
    """The suite's own user cache (LR images, engine choices), for this process and the CLI processes it starts:
    nothing is read from or left in the user's."""
    import os

    previous = os.environ.get("XDG_CACHE_HOME")
    os.environ["XDG_CACHE_HOME"] = str(tmp_path_factory.mktemp("cache"))
    yield
    if previous is None:
        del os.environ["XDG_CACHE_HOME"]
    else:
        os.environ["XDG_CACHE_HOME"] = previous


@pytest.fixture(scope="session")
def image_folder(tmp_path_factory) -> Path:
    root = tmp_path_factory.mktemp("hr")
    rng = np.random.default_rng(0)
    for i in range(6):
        Image.fromarray(synthetic_image(rng, 96 + 8 * i, 112)).save(root / f"img{i}.png")
    return root


def tiny_config(data: Path, out: Path, **overrides):
    """A tiny x2 training configuration that runs in about a second."""
    from repsr_cli.train.config import TrainConfig

    base = dict(
        data=str(data),
        out=str(out),
        scale=2,
        size="tiny",
        iters=10,
        batch=3,
        patch=12,
        bn_switch=0.5,
        bn_batches=2,
        log_every=1,
        ckpt_every=4,
    )
    return TrainConfig(**{**base, **overrides})


@pytest.fixture(scope="session")
def tiny_checkpoint(tmp_path_factory, image_folder) -> Path:
    """A tiny x2 run trained a few steps through the BN switch, so its BN statistics are real."""
    from repsr_cli.train.trainer import Trainer

    out = tmp_path_factory.mktemp("run")
    cfg = tiny_config(image_folder, out, iters=6, batch=4, patch=16, log_every=2, ckpt_every=3)
    Trainer(cfg).run()
    return out / "checkpoints" / "last.pth"


def cli(*args: object) -> subprocess.CompletedProcess:
    """`repsr ARGS` in this process (no torch import per call): exit code, stdout and stderr as a
    subprocess would give them. For exit codes on signals, use run_cli."""
    from repsr_cli.cli import main

    out, err = io.StringIO(), io.StringIO()
    code = 0
    previous = signal.getsignal(signal.SIGTERM)
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        try:
            main([str(a) for a in args])
        except SystemExit as exc:
            code = exc.code if isinstance(exc.code, int) else int(exc.code is not None)
        finally:
            signal.signal(signal.SIGTERM, previous)
    return subprocess.CompletedProcess(list(args), code, out.getvalue(), err.getvalue())


def run_cli(*args: str, cwd: Path | None = None) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "repsr_cli", *map(str, args)], capture_output=True, text=True, cwd=cwd, timeout=300
    )


def add_bundled(bundle: Path, name: str, size: str, scale: int) -> None:
    """An untrained model shipped into `bundle` as benchmarks/ship_run.py ships one: its file and its row of the
    model table (the family read from the name, as these test bundles name them)."""
    from repsr_cli.deploy import weights
    from repsr_cli.formats.deploy import save_deploy
    from repsr_cli.model import DeployNet, size_config

    path = bundle / f"{name}.safetensors"
    save_deploy(DeployNet(size_config(size, scale)), path)
    table = bundle / weights.MODEL_TABLE
    rows = [r for r in json.loads(table.read_text()) if r["name"] != name] if table.exists() else []
    family = next((f for f in ("real", "sharp") if name.startswith(f"repsr-{f}-")), "clean")
    table.write_text(json.dumps([*rows, weights.table_row(path, family, "untrained")]))


@pytest.fixture
def fake_bundle(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A bundled-models folder of untrained networks, clean, real and sharp families, and an empty user folder."""
    from repsr_cli.deploy import weights

    bundle, user = tmp_path / "bundled", tmp_path / "user"
    bundle.mkdir()
    user.mkdir()
    models = (
        ("repsr-x2", "tiny", 2),
        ("repsr-tiny-x4", "tiny", 4),
        ("repsr-x4", "small", 4),
        ("repsr-real-x2", "tiny", 2),
        ("repsr-real-x4", "small", 4),
        ("repsr-sharp-x2", "tiny", 2),
        ("repsr-sharp-x4", "small", 4),
    )
    for name, size, scale in models:
        add_bundled(bundle, name, size, scale)
    monkeypatch.setattr(weights, "bundled_dir", lambda: bundle)
    monkeypatch.setattr(weights, "user_model_dir", lambda: user)
    return bundle
