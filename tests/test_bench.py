"""`repsr bench --json` reports every row it promises (speed itself is never asserted)."""

from __future__ import annotations

import json

import torch

from repsr_cli.measure.speed import timed_together

from .conftest import cli


def test_bench_json_shape() -> None:
    result = cli("bench", "--size", "tiny", "--scale", "2", "--side", "24", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    rows = report["results"]
    assert {(r["precision"], r["variant"]) for r in rows} == {
        ("fp32", "fused"),
        ("fp32", "unfused"),
        ("bf16", "fused"),
        ("bf16", "unfused"),
        ("uint8", "bicubic"),
    }
    for r in rows:
        assert set(r) == {
            "size", "scale", "device", "precision", "variant", "mp_per_s", "gflops", "mp_per_s_min", "mp_per_s_max"
        }  # fmt: skip
        assert r["mp_per_s"] > 0 and r["size"] == "tiny" and r["scale"] == 2
        assert r["mp_per_s_min"] <= r["mp_per_s"] <= r["mp_per_s_max"]  # the median lies within the rounds' spread
    assert all(r["gflops"] > 0 for r in rows if r["variant"] == "fused")
    assert set(report["peak_gflops"]) == {"fp32", "bf16"}


def test_timed_together_takes_turns() -> None:
    """Round-robin is what keeps ratios fair on a drifting machine: a, b, a, b... never a, a, a, b, b, b."""
    calls: list[str] = []
    fns = {key: (lambda key=key: calls.append(key)) for key in ("a", "b")}
    seconds = timed_together(fns, torch.device("cpu"), rounds=3, min_time=0.0)
    assert calls == ["a", "b"] * 4  # one warm-up round, then three timed rounds
    assert set(seconds) == {"a", "b"} and all(s >= 0 for s in seconds.values())


def test_unfused_baseline_runs_the_branches() -> None:
    """In eval mode a training network computes its blocks folded (the fused cost); the benchmark's unfused
    baseline must run the branches, or 'fused / unfused' would compare the fused network with itself."""
    from repsr_cli.measure.speed import Branches, networks
    from repsr_cli.model.batchnorm import phased_norms

    train_net, deploy = networks("tiny", 2)
    calls: list[int] = []
    phased_norms(train_net)[0].register_forward_hook(lambda *_: calls.append(1))
    x = torch.rand(1, 3, 10, 10)
    with torch.no_grad():
        folded, branches = train_net(x), Branches(train_net)(x)
    assert len(calls) == 1  # the BatchNorm ran once: in the branches, not in the folded forward
    torch.testing.assert_close(branches, folded, rtol=0, atol=1e-5)
    torch.testing.assert_close(deploy(x), folded, rtol=0, atol=1e-5)


def test_old_option_names_still_work() -> None:
    """--preset (now --size) and --size N (now --side), as scripts from before the renames wrote them."""
    result = cli("bench", "--preset", "tiny", "--scale", "2", "--size", "16", "--json")
    assert result.returncode == 0, result.stderr
    report = json.loads(result.stdout)
    assert report["input_size"] == [16, 16] and {r["size"] for r in report["results"]} == {"tiny"}
