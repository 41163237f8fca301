"""`repsr plot`: loss and validation PSNR of a run, the BN switch marked."""

from __future__ import annotations

import json
from pathlib import Path

from ..errors import UserError


def read_log(run_dir: Path) -> list[dict]:
    log = Path(run_dir) / "log.jsonl"
    if not log.exists():
        raise UserError("no log.jsonl: not a run folder", run_dir)
    try:
        return [json.loads(line) for line in log.read_text().splitlines() if line.strip()]
    except json.JSONDecodeError as exc:
        raise UserError(f"log.jsonl is not valid JSON lines ({exc.msg}, line {exc.lineno})", run_dir) from None


def plot_run(run_dir: Path, output: Path | None = None) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'repsr[plot]'") from None
    records = read_log(run_dir)
    if not records:
        raise UserError("log.jsonl is empty", run_dir)
    fig, ax_loss = plt.subplots(figsize=(8, 4.5))
    ax_loss.plot([r["iter"] for r in records], [r["loss"] for r in records], color="tab:blue", lw=1)
    ax_loss.set_xlabel("iteration")
    ax_loss.set_ylabel("L1 loss", color="tab:blue")
    ax_loss.set_yscale("log")
    val = [r for r in records if "psnr" in r]
    if val:
        ax_psnr = ax_loss.twinx()
        ax_psnr.plot([r["iter"] for r in val], [r["psnr"] for r in val], "o-", color="tab:red", ms=3)
        ax_psnr.set_ylabel("validation PSNR (dB, Y)", color="tab:red")
    switch = next((r["iter"] for r in records if r.get("bn") == "population"), None)
    if switch is not None:
        ax_loss.axvline(switch, color="gray", ls="--", lw=1)
        ax_loss.text(switch, ax_loss.get_ylim()[1], " BN -> population", va="top", fontsize=8, color="gray")
    ax_loss.set_title(Path(run_dir).resolve().name)
    fig.tight_layout()
    output = Path(output) if output else Path(run_dir) / "curves.png"
    fig.savefig(output, dpi=120)
    plt.close(fig)
    return output
