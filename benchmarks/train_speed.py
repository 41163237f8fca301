"""Training speed per preset: iterations/s at batch 16, LR patch 64, fp32 vs bf16 autocast (channels_last),
and the share of each step spent waiting for data. Writes docs/training-speed.md.

Run: python benchmarks/train_speed.py [--presets tiny small base] [--steps 5] [--data DIR]
Ratios are against fp32 measured in the same process; absolute numbers depend on the machine (named in the
output).
"""

from __future__ import annotations

import argparse
import sys
import time
from pathlib import Path

import torch
import torch.nn.functional as F

from repsr_cli.bench import machine_name
from repsr_cli.data.dataset import Pair, PatchSampler, load_pairs
from repsr_cli.model import RepSRNet, preset_config

ROOT = Path(__file__).resolve().parents[1]


def sampler(data: Path | None, scale: int, patch: int, batch: int) -> PatchSampler:
    if data is not None and data.exists():
        pairs, _ = load_pairs(data, scale)
    else:  # synthetic stand-in so the benchmark runs anywhere
        g = torch.Generator().manual_seed(0)
        pairs = []
        for i in range(8):
            hr = (torch.rand(512, 512, 3, generator=g) * 255).to(torch.uint8).numpy()
            pairs.append(Pair(f"s{i}", hr, hr[::scale, ::scale].copy()))
    return PatchSampler(pairs, scale, patch, batch, seed=0)


def measure(preset: str, dtype: torch.dtype | None, data: PatchSampler, steps: int, scale: int) -> tuple[float, float]:
    torch.manual_seed(0)
    net = RepSRNet(preset_config(preset, scale)).to(memory_format=torch.channels_last).train()
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    waited = 0.0

    def step(i: int) -> float:
        t0 = time.perf_counter()
        lr, hr = data.batch_at(i)
        lr = lr.contiguous(memory_format=torch.channels_last)
        t1 = time.perf_counter()
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = net(lr)
        loss = F.l1_loss(out.float(), hr)
        opt.zero_grad(set_to_none=True)
        loss.backward()
        opt.step()
        return t1 - t0

    step(0)  # warm-up
    start = time.perf_counter()
    for i in range(1, steps + 1):
        waited += step(i)
    elapsed = time.perf_counter() - start
    return steps / elapsed, waited / elapsed


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--presets", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "train" / "T91")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "training-speed.md")
    args = ap.parse_args()
    data = sampler(args.data, args.scale, args.patch, args.batch)
    rows = []
    for preset in args.presets:
        fp32, share32 = measure(preset, None, data, args.steps, args.scale)
        bf16, share16 = measure(preset, torch.bfloat16, data, args.steps, args.scale)
        rows.append(f"| {preset} | {fp32:.3f} | {bf16:.3f} | {bf16 / fp32:.2f}x | {share32:.1%} | {share16:.1%} |")
        print(rows[-1], flush=True)
    table = "\n".join(
        [
            "# Training speed",
            "",
            f"Machine: {machine_name(torch.device('cpu'))}.",
            f"x{args.scale}, batch {args.batch}, LR patch {args.patch}, {args.steps} timed steps after one warm-up,"
            " channels_last; bf16 is autocast with fp32 master weights and BN statistics in fp32.",
            "",
            "| preset | fp32 it/s | bf16 it/s | bf16 / fp32 | data wait (fp32) | data wait (bf16) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            f"Reproduce: `python benchmarks/train_speed.py {' '.join(sys.argv[1:])}`.",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table)
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
