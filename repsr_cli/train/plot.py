"""`repsr plot`: loss and validation PSNR of a run, the BN switch marked."""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path

from ..errors import UserError
from ..formats.files import check_output
from .runlog import read_config, read_log

PLOT_SUFFIXES = (".png", ".pdf", ".svg")


def plot_run(run_dir: Path, output: Path | None = None, warn: Callable[[str], None] | None = None) -> Path:
    try:
        import matplotlib

        matplotlib.use("Agg")
        import matplotlib.pyplot as plt
    except ImportError:
        raise UserError("plotting needs matplotlib: pip install 'repsr[plot]'") from None
    output = Path(output) if output else Path(run_dir) / "curves.png"
    if output.suffix.lower() not in PLOT_SUFFIXES:
        raise UserError(f"cannot plot to {output.suffix or 'a name without suffix'!r} (use {', '.join(PLOT_SUFFIXES)})")
    check_output(output, overwrite=True)  # first, before any reading; curves.png is redrawn on every call
    records = read_log(run_dir)
    if not records:
        raise UserError("log.jsonl is empty", run_dir)
    fig, ax_loss = plt.subplots(figsize=(8, 4.5))
    ax_loss.plot([r["iter"] for r in records], [r["loss"] for r in records], color="tab:blue", lw=1)
    ax_loss.set_xlabel("iteration")
    cfg = read_config(run_dir, warn)
    ax_loss.set_ylabel(f"{(cfg.loss if cfg else 'l1').upper()} loss", color="tab:blue")
    ax_loss.set_yscale("log")
    val = [r for r in records if "psnr" in r]
    if val:
        ax_psnr = ax_loss.twinx()
        ax_psnr.plot([r["iter"] for r in val], [r["psnr"] for r in val], "o-", color="tab:red", ms=3)
        ax_psnr.set_ylabel("validation PSNR (dB, Y)", color="tab:red")
    logged_switch = next((r["iter"] for r in records if r.get("bn") == "population"), None)
    switch = cfg.switch_iter if cfg and logged_switch is not None else logged_switch
    if switch is not None:
        ax_loss.axvline(switch, color="gray", ls="--", lw=1)
        ax_loss.text(switch, ax_loss.get_ylim()[1], " BN -> population", va="top", fontsize=8, color="gray")
    ax_loss.set_title(Path(run_dir).resolve().name)
    fig.tight_layout()
    try:
        fig.savefig(output, dpi=120)
    except OSError as exc:
        raise UserError(f"cannot write ({exc.strerror or exc})", output) from None
    plt.close(fig)
    return output
