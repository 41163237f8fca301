"""`repsr bench --json` reports every row it promises (speed itself is never asserted)."""

from __future__ import annotations

import json

from .conftest import run_cli


def test_bench_json_shape() -> None:
    result = run_cli("bench", "--preset", "tiny", "--scale", "2", "--size", "24", "--json")
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
        assert set(r) == {"preset", "scale", "device", "precision", "variant", "mp_per_s", "gflops"}
        assert r["mp_per_s"] > 0 and r["preset"] == "tiny" and r["scale"] == 2
    assert all(r["gflops"] > 0 for r in rows if r["variant"] == "fused")
    assert set(report["peak_gflops"]) == {"fp32", "bf16"}
