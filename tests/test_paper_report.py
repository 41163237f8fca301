"""The paper-reproduction report: verdicts only beyond the seed noise, one section per budget updated in place."""

import numpy as np

from benchmarks.paper_reproduction import compare, seconds_per_iter, write_page


def test_gap_within_twice_the_seed_spread_is_unresolved():
    a = np.array([30.0, 30.2, 30.4])  # std 0.2
    b = np.array([29.8, 30.0, 30.2])  # gap 0.2 < 2 * 0.2
    assert "unresolved" in compare(a, b, "claim")


def test_gap_beyond_twice_the_seed_spread_gets_a_verdict_either_way():
    a = np.array([30.50, 30.52, 30.54])
    b = np.array([30.00, 30.02, 30.04])
    assert "agrees with claim" in compare(a, b, "claim")
    assert "contradicts claim" in compare(b, a, "claim")


def test_one_seed_never_gets_a_verdict():
    assert "unresolved" in compare(np.array([31.0]), np.array([30.0]), "claim")


def test_a_budget_section_is_replaced_in_place_and_the_rest_kept(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("# head\n\nkept as written\n\n<!-- budget tiny-x4-1500 -->\nshort budget\n")
    write_page(page, "small-x4-4000", "small v1\n")
    write_page(page, "tiny-x4-8000", "tiny v1\n")
    write_page(page, "small-x4-4000", "small v2\n")
    text = page.read_text()
    assert text.startswith("# head\n\nkept as written\n\n")
    assert "small v1" not in text
    order = [text.index(s) for s in ("tiny v1", "small v2", "short budget")]
    assert order == sorted(order)  # longest budget first


def test_step_time_is_taken_at_the_thread_count_the_run_started_with():
    started = [{"iter": 50 * k, "loss": 1.0, "it_s": 2.0} for k in range(1, 4)]  # logged before threads were
    resumed = [{"iter": 50 * k, "loss": 1.0, "it_s": 4.0, "threads": 2} for k in range(4, 10)]
    assert seconds_per_iter(started + resumed) == 0.5
    assert seconds_per_iter([{"iter": 0, "loss": 1.0, "psnr": 30.0}, *resumed]) == 0.25
