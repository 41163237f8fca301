"""benchmarks/gpu_session.py on the CPU (--dry-run): the same path a lent GPU window runs, in seconds."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
from PIL import Image

ROOT = Path(__file__).resolve().parents[1]


def session(*args: object) -> subprocess.CompletedProcess:
    cmd = [sys.executable, str(ROOT / "benchmarks" / "gpu_session.py"), *map(str, args)]
    return subprocess.run(cmd, capture_output=True, text=True, timeout=300)


def test_a_dry_run_trains_splits_and_resumes(tmp_path: Path) -> None:
    data = tmp_path / "pack"
    data.mkdir()
    for i in range(3):
        pixels = np.random.default_rng(i).integers(0, 256, (64, 64, 3), dtype=np.uint8)
        Image.fromarray(pixels).save(data / f"{i}.jpg", quality=90)
    first = session(tmp_path / "out", "--dry-run", "--data", data, "--work", tmp_path / "work", "--minutes", "3")
    assert first.returncode == 0, first.stderr
    report = json.loads((tmp_path / "out" / "session-report.json").read_text())
    assert [r["run"] for r in report["runs"]] == ["real-base-x4", "real-base-x2"]
    assert all(r["iterations"][1] == 6 for r in report["runs"]), report["runs"]
    files = sorted(p.name for p in (tmp_path / "out").iterdir())
    assert len(files) <= 8 and all(p.stat().st_size <= 16 * 2**20 for p in (tmp_path / "out").iterdir())
    # a second window: the parts brought back rebuild each checkpoint byte for byte, and the runs go on from it
    again = session(
        tmp_path / "out2", "--dry-run", "--data", data, "--work", tmp_path / "w2", "--resume", tmp_path / "out"
    )
    assert again.returncode == 0, again.stderr
    for name in ("real-base-x4", "real-base-x2"):
        original = (tmp_path / "work" / name / "checkpoints" / "last.pth").read_bytes()
        assert (tmp_path / "w2" / name / "checkpoints" / "last.pth").read_bytes() == original
    resumed = json.loads((tmp_path / "out2" / "session-report.json").read_text())["runs"]
    assert all(r["iterations"][0] == 6 for r in resumed), resumed  # started where the first window ended


def test_without_cuda_it_says_so_and_exits_cleanly(tmp_path: Path) -> None:
    result = session(tmp_path / "out")
    assert result.returncode == 0 and "no CUDA device here" in result.stdout


def test_bad_arguments_are_one_line_and_a_broken_checkpoint_costs_one_run(tmp_path: Path) -> None:
    data, empty = tmp_path / "pack", tmp_path / "empty"
    data.mkdir()
    empty.mkdir()
    Image.fromarray(np.zeros((64, 64, 3), np.uint8)).save(data / "a.jpg")
    afile = tmp_path / "afile"
    afile.write_text("x")
    cases = [
        ((tmp_path / "o1", "--data", empty), "--data: the folder holds no images"),
        ((tmp_path / "o2", "--data", data, "--resume", empty), "--resume: no session-report.json there"),
        ((afile, "--data", data), "is a file; name a folder"),
    ]
    for args, words in cases:
        result = session(*args, "--dry-run", "--work", tmp_path / "w0")
        lines = [ln for ln in result.stderr.splitlines() if ln.strip()]
        assert result.returncode == 1 and len(lines) == 1 and words in lines[0], (args, result.stderr)
    broken = tmp_path / "work" / "real-base-x4" / "checkpoints"
    broken.mkdir(parents=True)
    (broken / "last.pth").write_bytes(b"PK\x03\x04 truncated")
    result = session(tmp_path / "out", "--dry-run", "--data", data, "--work", tmp_path / "work", "--minutes", "3")
    assert result.returncode == 0, result.stderr
    runs = json.loads((tmp_path / "out" / "session-report.json").read_text())["runs"]
    assert runs[0]["reason"].startswith("failed: ") and runs[1]["iterations"][1] == 6, runs
