"""The flow runs one way (train -> checkpoint -> fuse -> deploy model -> upscaler -> files): the deploy side
never imports the training side, so an installed upscaler needs none of it."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

PACKAGE = Path(__file__).resolve().parents[1] / "repsr_cli"
DEPLOY_SIDE = ("deploy", "infer", "formats", "media", "measure", "model")


def imported_modules(path: Path) -> set[str]:
    """Every module `path` imports, as an absolute name (relative imports resolved)."""
    package = ["repsr_cli", *path.relative_to(PACKAGE).parent.parts]
    found = set()
    for node in ast.walk(ast.parse(path.read_text())):
        if isinstance(node, ast.Import):
            found |= {alias.name for alias in node.names}
        elif isinstance(node, ast.ImportFrom):
            base = package[: len(package) - node.level + 1] if node.level else []
            module = ".".join([*base, *([node.module] if node.module else [])])
            found |= {module} | {f"{module}.{alias.name}" for alias in node.names}
    return found


@pytest.mark.parametrize("side", DEPLOY_SIDE)
def test_the_deploy_side_never_imports_training(side: str) -> None:
    for path in sorted((PACKAGE / side).rglob("*.py")):
        training = sorted(
            m for m in imported_modules(path) if m == "repsr_cli.train" or m.startswith("repsr_cli.train.")
        )
        assert not training, f"{path.relative_to(PACKAGE)} imports {training}"


def test_imports_are_resolved_to_where_they_point() -> None:
    """The check above can only fail if it reads imports right: the trainer's own imports are seen."""
    trainer = imported_modules(PACKAGE / "train" / "trainer.py")
    assert {"repsr_cli.formats.checkpoint", "repsr_cli.train.config", "repsr_cli.measure.evaluate"} <= trainer
