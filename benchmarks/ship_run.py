"""Ship a finished run as a bundled model, in one step instead of the model card's manual ones.

1. fuse RUN/checkpoints/last.pth into weights/NAME.safetensors (the fold is checked numerically), and write
   its row of the bundled model table (weights/models.json: family, size, scale, hash, run);
2. copy the run's record (config.json, log.jsonl) into history/RUN, and its checkpoint too with
   --keep-checkpoint (the head of a lineage that later runs start from with --init-from: its network and
   record, without the optimizer state that only resume needs);
3. plot its curves to history/RUN/curves.png;
4. regenerate weights/runs.md (benchmarks/training_runs.py) and weights/scores.md/.json
   (benchmarks/eval_weights.py, needs ../shared/data/benchmark; --no-scores skips it);
5. print the model card's row for NAME, to paste into weights/README.md.

Run: python benchmarks/ship_run.py runs/real-x4 repsr-real-x4 --family real [--keep-checkpoint]
"""

from __future__ import annotations

import argparse
import json
import shutil
import subprocess
import sys
from pathlib import Path

from repsr_cli.deploy.convert import convert
from repsr_cli.deploy.weights import FAMILIES, MODEL_TABLE, table_row
from repsr_cli.formats.checkpoint import lineage_head, load_checkpoint, save_checkpoint
from repsr_cli.formats.files import atomic_write
from repsr_cli.train.plot import plot_run
from repsr_cli.train.runlog import summarize

ROOT = Path(__file__).resolve().parents[1]


def card_row(name: str, run: str) -> str:
    scores = ROOT / "weights" / "scores.json"
    records = json.loads(scores.read_text()) if scores.exists() else []
    clean = {r["set"]: r["psnr"] for r in records if r["model"] == name and r["degradation"] == "none"}
    summary = summarize(ROOT / "history" / run)
    psnr = " / ".join(f"{clean[s]:.3f}" for s in ("Set5", "Set14", "B100") if s in clean) or "(not scored)"
    return f"| {name} | {psnr} | [{run}](../history/{run}) | {summary.iterations:,} iterations |"


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("run", type=Path, help="run folder (with checkpoints/last.pth, log.jsonl, config.json)")
    ap.add_argument("name", help="bundled model name, e.g. repsr-real-x4")
    ap.add_argument("--family", required=True, choices=FAMILIES, help="what it was trained for (weights.FAMILIES)")
    ap.add_argument("--keep-checkpoint", action="store_true", help="keep the checkpoint in history/ (lineage head)")
    ap.add_argument("--no-scores", action="store_true", help="do not rerun benchmarks/eval_weights.py")
    args = ap.parse_args()
    run = args.run.resolve()
    result = convert(run / "checkpoints" / "last.pth", ROOT / "weights" / f"{args.name}.safetensors", overwrite=True)
    print(f"wrote {result.output} (fold max |diff| {result.max_abs_diff:.2g})")
    table = ROOT / "weights" / MODEL_TABLE
    rows = [row for row in json.loads(table.read_text()) if row["name"] != args.name]
    rows.append(table_row(result.output, args.family, run.name))
    text = json.dumps(sorted(rows, key=lambda row: row["name"]), indent=1) + "\n"
    atomic_write(table, lambda tmp: Path(tmp).write_text(text))
    record = ROOT / "history" / run.name
    record.mkdir(parents=True, exist_ok=True)
    for name in ("config.json", "log.jsonl"):
        shutil.copy2(run / name, record / name)
    if args.keep_checkpoint:
        (record / "checkpoints").mkdir(exist_ok=True)
        head = lineage_head(load_checkpoint(run / "checkpoints" / "last.pth"))
        save_checkpoint(record / "checkpoints" / "last.pth", head)
    print(f"wrote {plot_run(record, record / 'curves.png')}")
    scripts = ["training_runs.py"] + ([] if args.no_scores else ["eval_weights.py"])
    for script in scripts:
        subprocess.run([sys.executable, str(ROOT / "benchmarks" / script)], check=True)
    print("model card row:")
    print(card_row(args.name, run.name))


if __name__ == "__main__":
    main()
