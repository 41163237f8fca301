"""The training images as a data pack small enough to travel with the working tree to a lent GPU machine.

Each HR image of ../shared/data/train is shrunk as training shrinks it (--max-side, by an integer factor,
MATLAB bicubic) and saved as a high-quality JPEG (--quality, --subsampling) under the same relative path, into an
ignored folder (default data-pack/). The pack is for the GPU session only (benchmarks/gpu_session.py); what
its compression costs in PSNR is measured by `--measure` (two short CPU runs, the PNGs against the pack).

Run: python benchmarks/make_data_pack.py [--quality 90] [--out data-pack] [--measure ITERS]
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from PIL import Image

from repsr_cli.data.dataset import prepare_hr
from repsr_cli.media.read import find_images

ROOT = Path(__file__).resolve().parents[1]
TRAIN = ROOT.parent / "shared" / "data" / "train"


def make_pack(src: Path, out: Path, quality: int, max_side: int, subsampling: int) -> int:
    """Write the pack; returns its size in bytes."""
    total = 0
    for path in find_images(src):
        hr, _ = prepare_hr(path, max_side)
        target = out / path.relative_to(src).with_suffix(".jpg")
        target.parent.mkdir(parents=True, exist_ok=True)
        Image.fromarray(hr).save(target, quality=quality, subsampling=subsampling)
        total += target.stat().st_size
    return total


def measure(pack: Path, iters: int) -> dict[str, float]:
    """Set5 PSNR after the same short tiny x4 run on the PNGs and on the pack (fp32, one thread each)."""
    import torch

    from repsr_cli.train.config import TrainConfig
    from repsr_cli.train.trainer import Trainer

    torch.set_num_threads(1)
    scores = {}
    for name, data in (("originals", TRAIN), ("pack", pack)):
        cfg = TrainConfig(
            data=str(data),
            out=str(ROOT / "runs" / f"pack-measure-{name}"),
            scale=4,
            size="tiny",
            iters=iters,
            batch=16,
            patch=32,
            max_hr_side=2048,
            val=str(ROOT.parent / "shared" / "data" / "benchmark" / "Set5"),
            val_every=iters,
            precision="fp32",
        )
        resume = Path(cfg.out, "checkpoints", "last.pth").exists()
        Trainer(cfg, resume=resume).run()
        scores[name] = Trainer(cfg, resume=True).validate().psnr
    return scores


MIN_SIDE = 8  # a shrunk HR image smaller than this holds no training patch at any scale


def check_args(args: argparse.Namespace) -> str | None:
    """What is wrong with the options, in one line, before any image is read."""
    if not 1 <= args.quality <= 100:
        return f"--quality must be 1 to 100, got {args.quality}"
    if args.max_side < MIN_SIDE:
        return f"--max-side must be at least {MIN_SIDE} pixels, got {args.max_side}"
    if args.measure < 0:
        return f"--measure must be 0 or more iterations, got {args.measure}"
    if args.out.exists() and not args.out.is_dir():
        return f"--out {args.out} is a file; name a folder"
    return None


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--quality", type=int, default=90)
    ap.add_argument("--max-side", type=int, default=2048)
    ap.add_argument("--subsampling", type=int, default=2, choices=(0, 1, 2), help="JPEG chroma: 0 4:4:4, 2 4:2:0")
    ap.add_argument("--out", type=Path, default=ROOT / "data-pack")
    ap.add_argument("--measure", type=int, default=0, help="iterations of the PNG-vs-pack comparison (0: none)")
    args = ap.parse_args()
    problem = check_args(args)
    if problem:
        raise SystemExit(f"make_data_pack: {problem}")
    size = make_pack(TRAIN, args.out, args.quality, args.max_side, args.subsampling)
    chroma = {0: "4:4:4", 1: "4:2:2", 2: "4:2:0"}[args.subsampling]
    print(f"wrote {args.out}: {size / 2**20:.1f} MiB (JPEG quality {args.quality}, {chroma})")
    if args.measure:
        scores = measure(args.out, args.measure)
        record = {"quality": args.quality, "chroma": chroma, "mib": size / 2**20, "iters": args.measure}
        record["set5_psnr"] = scores
        (args.out / "measure.json").write_text(json.dumps(record, indent=2))
        print(json.dumps(record))


if __name__ == "__main__":
    main()
