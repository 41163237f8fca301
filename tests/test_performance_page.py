"""docs/performance.md is rewritten by benchmarks/upscale_speed.py: the hand-written part below its marker stays."""

from benchmarks.pages import KEPT, kept_tail


def test_the_hand_written_part_survives_a_rewrite(tmp_path):
    page = tmp_path / "performance.md"
    page.write_text(f"# Performance\n\nold table\n\n{KEPT}\n## GPU\n\nhow to run it\n")
    assert kept_tail(page) == f"\n{KEPT}\n## GPU\n\nhow to run it\n"


def test_a_page_without_the_marker_or_no_page_keeps_nothing(tmp_path):
    page = tmp_path / "performance.md"
    assert kept_tail(page) == ""
    page.write_text("# Performance\n\nold table\n")
    assert kept_tail(page) == ""
