"""The bundled weights travel inside the wheel, so a plain install works from any folder with no network."""

from __future__ import annotations

import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[1]


def test_wheel_contains_bundled_weights(tmp_path: Path) -> None:
    pytest.importorskip("setuptools")
    result = subprocess.run(
        [sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "-w", str(tmp_path), str(ROOT)],
        capture_output=True,
        text=True,
        timeout=300,
    )
    assert result.returncode == 0, result.stderr[-2000:]
    wheel = next(tmp_path.glob("repsr-*.whl"))
    names = zipfile.ZipFile(wheel).namelist()
    shipped = sorted(p.name for p in (ROOT / "weights").glob("*.safetensors"))
    assert shipped, "no bundled weights in weights/"
    for name in shipped:
        assert f"repsr_cli/bundled/{name}" in names
    assert "repsr_cli/cli.py" in names
    for init in (ROOT / "repsr_cli").rglob("__init__.py"):  # every subpackage is listed in pyproject.toml
        assert init.relative_to(ROOT).as_posix() in names, init
