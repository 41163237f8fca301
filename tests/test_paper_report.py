"""The paper-reproduction report: verdicts only beyond the seed noise, one section per budget updated in place."""

import json

import numpy as np

from benchmarks.paper_reproduction import SUMMARY, compare, write_page, write_summary


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


def keep(history, tag, run, psnr, params):
    folder = history / tag / run
    folder.mkdir(parents=True)
    scores = {name: [psnr, 0.9] for name in ("Set5", "Set14", "B100")}
    (folder / "result.json").write_text(json.dumps({**scores, "deploy_params": params}))


def test_the_head_summary_gives_every_kept_budget_its_verdicts_and_keeps_the_words_around_it(tmp_path):
    history = tmp_path / "history"
    for seed, (switch, ecb) in enumerate([(30.00, 30.20), (30.02, 30.22)]):
        keep(history, "small-x4-4000", f"repsr-BN-switch-s{seed}", switch, 400)
        keep(history, "small-x4-4000", f"ecb-s{seed}", ecb, 400)
    keep(history, "tiny-x4-8000", "repsr-BN-switch-s0", 29.0, 16)
    keep(history, "tiny-x4-8000", "plain-s0", 28.5, 16)
    (history / "small-x4-20000" / "ecb-s0" / "parked").mkdir(parents=True)  # unfinished: no result yet
    page = tmp_path / "page.md"
    page.write_text(f"# head\n\nwords before\n{SUMMARY[0]}\nold table\n{SUMMARY[1]}\nwords after\n")
    write_summary(page, history)
    text = page.read_text()
    assert "old table" not in text and text.startswith("# head\n\nwords before\n")
    assert text.endswith(f"{SUMMARY[1]}\nwords after\n")
    rows = [line for line in text.splitlines() if line.startswith("| tiny") or line.startswith("| small")]
    assert len(rows) == 2 and rows[0].startswith("| tiny, 8,000 | 1 |")  # smaller network first
    assert "+0.500 dB (one seed): unresolved" in rows[0]
    assert "-0.200 dB (noise 0.028): contradicts" in rows[1]
