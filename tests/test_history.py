"""history/ is what the README says it is: one folder per run in the lineage of a bundled model, each with a
replayable config.json, and checkpoints only for the heads of those lineages, without optimizer state."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from repsr_cli.formats.checkpoint import lineage_head, load_checkpoint
from repsr_cli.train.config import init_run_name

ROOT = Path(__file__).resolve().parents[1]
HISTORY = ROOT / "history"
pytestmark = pytest.mark.skipif(not HISTORY.is_dir(), reason="history/ is in a source checkout, not in a wheel")


def bundled_runs() -> set[str]:
    return {row["run"] for row in json.loads((ROOT / "weights" / "models.json").read_text())}


def parent(run: str) -> str | None:
    spec = json.loads((HISTORY / run / "config.json").read_text()).get("init_from")
    return init_run_name(spec) if spec else None


def test_every_run_in_history_leads_to_a_bundled_model() -> None:
    lineage, todo = set(), list(bundled_runs())
    while todo:
        run = todo.pop()
        assert (HISTORY / run / "config.json").is_file(), f"{run}: a bundled model's lineage, not in history/"
        lineage.add(run)
        if (up := parent(run)) is not None and up not in lineage:
            todo.append(up)
    assert {p.name for p in HISTORY.iterdir() if p.is_dir()} == lineage  # nothing else: experiments/ has the rest


def test_checkpoints_in_history_are_lineage_heads_of_bundled_models() -> None:
    runs = bundled_runs()
    for path in sorted(HISTORY.glob("*/checkpoints/*.pth")):
        run = path.parents[1].name
        assert run in runs, f"{run}: a checkpoint of a run that made no bundled model"
        ckpt = load_checkpoint(path)
        assert ckpt.keys() == lineage_head(ckpt).keys(), f"{run}: optimizer state kept"
