"""Training speed per size: iterations/s at batch 16, LR patch 64, fp32 vs bf16 autocast (channels_last),
and the share of each step spent waiting for data; the population phase against the batch phase (the blocks
run folded, RepSRNet.folds); then the cost of realistic degradations (`--degradation real`) at the settings the
real models train with, made in the step or ahead by one worker thread.
Writes docs/training-speed.md.

Run: python benchmarks/train_speed.py [--sizes tiny small base] [--steps 5] [--data DIR]
     python benchmarks/train_speed.py --profile [...]: where a step's time goes, layouts and thread counts
     (its own section of docs/training-speed.md)
Ratios are against fp32 measured in the same process; absolute numbers depend on the machine (named in the
output).
"""

from __future__ import annotations

import argparse
import subprocess
import sys
import time
from collections import Counter
from pathlib import Path

import torch
import torch.nn.functional as F
from pages import kept_tail, write_section

from repsr_cli.data.dataset import Pair, PatchSampler, Prefetcher, load_pairs
from repsr_cli.data.degradations import make_degrader
from repsr_cli.measure.speed import machine_name
from repsr_cli.model import BNPhase, RepSRNet, set_bn_phase, size_config

ROOT = Path(__file__).resolve().parents[1]


def sampler(data: Path | None, scale: int, patch: int, batch: int, degradation: str = "bicubic") -> PatchSampler:
    if data is not None and data.exists():
        pairs, _ = load_pairs(data, scale)
    else:  # synthetic stand-in so the benchmark runs anywhere
        g = torch.Generator().manual_seed(0)
        pairs = []
        for i in range(8):
            hr = (torch.rand(512, 512, 3, generator=g) * 255).to(torch.uint8).numpy()
            pairs.append(Pair(f"s{i}", hr, hr[::scale, ::scale].copy()))
    return PatchSampler(pairs, scale, patch, batch, seed=0, degrader=make_degrader(degradation, scale))


def measure(
    size: str,
    dtype: torch.dtype | None,
    data: PatchSampler,
    steps: int,
    scale: int,
    workers: int = 0,
    phase: BNPhase = BNPhase.BATCH,
    layout: torch.memory_format = torch.channels_last,
    profile: Counter | None = None,
) -> tuple[float, float]:
    """(iterations/s, share of the time waiting for data); with `profile`, each part's seconds added to it."""
    torch.manual_seed(0)
    net = RepSRNet(size_config(size, scale)).to(memory_format=layout).train()
    set_bn_phase(net, phase)
    opt = torch.optim.Adam(net.parameters(), 1e-4)
    waited = 0.0
    batches = Prefetcher(data, workers)
    parts = Counter() if profile is None else profile

    def step(i: int) -> float:
        marks = [time.perf_counter()]
        lr, hr = batches.batch_at(i, steps + 1)
        lr = lr.contiguous(memory_format=layout)
        marks.append(time.perf_counter())
        with torch.autocast("cpu", dtype=dtype or torch.bfloat16, enabled=dtype is not None):
            out = net(lr)
        loss = F.l1_loss(out.float(), hr)
        marks.append(time.perf_counter())
        opt.zero_grad(set_to_none=True)
        loss.backward()
        marks.append(time.perf_counter())
        opt.step()
        marks.append(time.perf_counter())
        for part, t0, t1 in zip(STEP_PARTS, marks[:-1], marks[1:], strict=True):
            parts[part] += t1 - t0
        return marks[1] - marks[0]

    step(0)  # warm-up
    parts.clear()
    start = time.perf_counter()
    for i in range(1, steps + 1):
        waited += step(i)
    elapsed = time.perf_counter() - start
    batches.close()
    return steps / elapsed, waited / elapsed


STEP_PARTS = ("data", "forward + loss", "backward", "optimizer")


def profile_rows(args: argparse.Namespace, data: PatchSampler) -> list[str]:
    """Where a step's time goes (wall time per part, so the shares add up) in fp32 and in bf16 autocast, and
    what the layout and the thread count change."""
    rows = []
    for size in args.sizes:
        for name, dtype in (("fp32", None), ("bf16", torch.bfloat16)):
            parts: Counter = Counter()
            rate, _ = measure(size, dtype, data, args.steps, args.scale, profile=parts)
            total = sum(parts.values())
            shares = " | ".join(f"{parts[p] / total:.0%}" for p in STEP_PARTS)
            contiguous, _ = measure(size, dtype, data, args.steps, args.scale, layout=torch.contiguous_format)
            rows.append(f"| {size} | {name} | {rate:.3f} | {shares} | {contiguous:.3f} ({contiguous / rate:.2f}x) |")
            print(rows[-1], flush=True)
    return rows


def thread_rows(args: argparse.Namespace) -> list[str]:
    """One run on two threads against two one-thread runs side by side (separate processes, started together):
    which uses two cores better."""
    rows = []
    for size in args.sizes:
        one = _child_rates(size, args, threads=1, copies=1)
        two = _child_rates(size, args, threads=2, copies=1)
        pair = _child_rates(size, args, threads=1, copies=2)
        rows.append(
            f"| {size} | {one[0]:.3f} | {two[0]:.3f} ({two[0] / one[0]:.2f}x) | "
            f"{' + '.join(f'{r:.3f}' for r in pair)} = {sum(pair):.3f} ({sum(pair) / one[0]:.2f}x) |"
        )
        print(rows[-1], flush=True)
    return rows


def _child_rates(size: str, args: argparse.Namespace, threads: int, copies: int) -> list[float]:
    cmd = [sys.executable, __file__, "--child", size, "--steps", str(args.steps), "--threads", str(threads)]
    cmd += [
        "--scale",
        str(args.scale),
        "--batch",
        str(args.batch),
        "--patch",
        str(args.patch),
        "--data",
        str(args.data),
    ]
    procs = [subprocess.Popen(cmd, stdout=subprocess.PIPE, text=True) for _ in range(copies)]
    return [float(p.communicate()[0].split()[-1]) for p in procs]


def degradation_rows(args: argparse.Namespace, dtype: torch.dtype | None) -> list[str]:
    """Step rate of the small size at the real models' settings (batch 16, LR patch 32) with clean LR,
    degraded LR made in the step, and degraded LR made ahead by one worker thread."""
    rows = []
    for scale in (4, 2):
        clean = sampler(args.data, scale, 32, 16)
        real = sampler(args.data, scale, 32, 16, "real")
        base, base_wait = measure("small", dtype, clean, args.steps, scale)
        inline, inline_wait = measure("small", dtype, real, args.steps, scale)
        ahead, ahead_wait = measure("small", dtype, real, args.steps, scale, workers=1)
        rows.append(
            f"| x{scale} | {base:.2f} ({base_wait:.0%}) | {inline:.2f} ({inline_wait:.0%}) | {inline / base:.2f}x "
            f"| {ahead:.2f} ({ahead_wait:.0%}) | {ahead / base:.2f}x |"
        )
        print(rows[-1], flush=True)
    return rows


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--sizes", "--sizes", nargs="+", default=["tiny", "small", "base"])
    ap.add_argument("--steps", type=int, default=5)
    ap.add_argument("--scale", type=int, default=4)
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--patch", type=int, default=64)
    ap.add_argument("--data", type=Path, default=ROOT.parent / "shared" / "data" / "train" / "T91")
    ap.add_argument("--out", type=Path, default=ROOT / "docs" / "training-speed.md")
    ap.add_argument("--threads", type=int, default=None, help="torch threads (default: torch's choice)")
    ap.add_argument("--profile", action="store_true", help="only the step profile, layouts and threads page")
    ap.add_argument("--child", help=argparse.SUPPRESS)  # one measurement in its own process: prints its it/s
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    data = sampler(args.data, args.scale, args.patch, args.batch)
    auto = torch.bfloat16 if torch.ops.mkldnn._is_mkldnn_bf16_supported() else None
    if args.child:
        print(measure(args.child, auto, data, args.steps, args.scale)[0])
        return
    if args.profile:
        write_profile_page(args, data, auto)
        return
    rows, folded = [], []
    for size in args.sizes:
        fp32, share32 = measure(size, None, data, args.steps, args.scale)
        bf16, share16 = measure(size, torch.bfloat16, data, args.steps, args.scale)
        rows.append(f"| {size} | {fp32:.3f} | {bf16:.3f} | {bf16 / fp32:.2f}x | {share32:.1%} | {share16:.1%} |")
        print(rows[-1], flush=True)
        batch = bf16 if auto else fp32
        population, _ = measure(size, auto, data, args.steps, args.scale, phase=BNPhase.POPULATION)
        folded.append(f"| {size} | {batch:.3f} | {population:.3f} | {population / batch:.2f}x |")
        print(folded[-1], flush=True)
    degraded = degradation_rows(args, auto)
    table = "\n".join(
        [
            "# Training speed",
            "",
            f"Machine: {machine_name(torch.device('cpu'))}.",
            f"x{args.scale}, batch {args.batch}, LR patch {args.patch}, {args.steps} timed steps after one warm-up,"
            " channels_last; bf16 is autocast with fp32 master weights and BN statistics in fp32.",
            "",
            "| size | fp32 it/s | bf16 it/s | bf16 / fp32 | data wait (fp32) | data wait (bf16) |",
            "|---|---|---|---|---|---|",
            *rows,
            "",
            "## Population phase",
            "",
            f"The same steps in {'bf16' if auto else 'fp32'} (what `--precision auto` picks here) with BatchNorm in"
            " the population phase: each block is then a fixed linear map and trains as the one 3x3 conv it fuses"
            " to, through the differentiable fold (same values and gradients as its branches, tested in float64)."
            " Sharp fine-tunes run in this phase throughout, runs from scratch for their last stretch.",
            "",
            "| size | batch phase it/s | population phase it/s | population / batch |",
            "|---|---|---|---|",
            *folded,
            "",
            "## Realistic degradations",
            "",
            f"small size, batch 16, LR patch 32, {'bf16' if auto else 'fp32'} (what `--precision auto` picks "
            "here); iterations/s with the share of the step spent waiting for the batch in brackets. *In the step*:"
            " the batch is degraded between optimiser steps; *ahead*: one worker thread degrades the next batch"
            " while the step runs (`repsr train --data-workers 1`, the default).",
            "",
            "| scale | clean LR | real, in the step | vs clean | real, ahead | vs clean |",
            "|---|---|---|---|---|---|",
            *degraded,
            "",
            f"Reproduce: `python benchmarks/train_speed.py {' '.join(sys.argv[1:])}`.",
            "",
        ]
    )
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(table + kept_tail(args.out))
    print(f"wrote {args.out}")


def write_profile_page(args: argparse.Namespace, data: PatchSampler, auto: torch.dtype | None) -> None:
    """The profile's section of docs/training-speed.md (kept when the main tables are rewritten)."""
    profile = profile_rows(args, data)
    threads = thread_rows(args)
    precision = "bf16" if auto else "fp32"
    lines = [
        f"Machine: {machine_name(torch.device('cpu'))}.",
        f"x{args.scale}, batch {args.batch}, LR patch {args.patch}, batch phase (the slower one), {args.steps} timed"
        " steps after one warm-up. The parts are wall time between the step's marks: *data* is the sampler's own"
        " cost (no worker thread here), *forward + loss* includes autocast's casts, *optimizer* is Adam's update"
        " of the fp32 master weights. fp32 is the trainer before `--precision`, bf16 what `auto` picks here.",
        "",
        "| size | precision | it/s (channels_last) | data | forward + loss | backward | optimizer |"
        " it/s contiguous (vs channels_last) |",
        "|---|---|---|---|---|---|---|---|",
        *profile,
        "",
        f"Threads, in {precision}, each measurement in its own process; *side by side*: two one-thread processes"
        " started together, their rates summed (what two parked runs, one per core, get).",
        "",
        "| size | 1 thread it/s | 2 threads it/s (vs 1) | two 1-thread runs side by side (vs 1) |",
        "|---|---|---|---|",
        *threads,
        "",
        f"Reproduce: `python benchmarks/train_speed.py {' '.join(sys.argv[1:])}`.",
    ]
    heading = "## Where a step's time goes"
    write_section(args.out, "training profile", "\n".join(lines), heading, "(`train_speed.py --profile`.)")
    print(f"wrote {args.out}")


if __name__ == "__main__":
    main()
