"""docs/sharp.md's verdicts: issue 40's halo targets and the --detail recommended for photos, from score rows."""

from __future__ import annotations

import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parents[1] / "benchmarks"))  # sharp_report imports its siblings

from benchmarks.sharp_report import halo_checks, recommended_detail  # noqa: E402


def row(psnr: float, halo: float, edge: float = 0.5, niqe: float = 18.0) -> dict[str, float]:
    return {"psnr": psnr, "halo": halo, "edge": edge, "niqe": niqe, "ssim": 0.6, "grid": 0.01}


def test_the_base_model_is_held_against_the_peer_on_every_axis() -> None:
    rows = {"sharp": row(24.2, 0.010, edge=0.50, niqe=19.0), "peer": row(24.35, 0.015, edge=0.48, niqe=20.0)}
    assert [ok for *_, ok in halo_checks(rows, "sharp", "peer", None)] == [True, True, True, True]
    rows["sharp"] = row(24.1, 0.016, edge=0.47, niqe=20.5)  # 0.25 dB below, more halo, softer, less natural
    assert [ok for *_, ok in halo_checks(rows, "sharp", "peer", None)] == [False, False, False, False]


def test_the_small_model_is_held_against_the_previous_blend_and_nothing_else() -> None:
    rows = {"sharp": row(24.0, 0.008), "old": row(25.0, 0.009)}
    ((what, _, ok),) = halo_checks(rows, "sharp", None, "old")
    assert ok and "previous --detail 0.5" in what
    assert halo_checks(rows, "sharp", None, None) == []


def test_the_recommended_detail_is_the_largest_within_the_peers_halo_and_above_bicubic() -> None:
    rows = {
        "bicubic": row(24.9, 0.004),
        "peer": row(24.4, 0.012),
        "detail 0.25": row(25.2, 0.006),
        "detail 0.5": row(25.0, 0.010),
        "detail 0.75": row(24.95, 0.013),  # over the peer's halo
        "sharp": row(24.5, 0.011),  # within the halo, but under bicubic
    }
    value, why = recommended_detail(rows, "sharp", "peer")
    assert value == 0.5 and "1.00 %" in why and "1.20 %" in why
    rows["detail 0.25"]["halo"] = rows["detail 0.5"]["halo"] = 0.02
    assert recommended_detail(rows, "sharp", "peer")[0] == 0.0
