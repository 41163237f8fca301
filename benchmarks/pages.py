"""The generated pages' shared mechanics: a hand-kept tail a rewrite preserves, and sections that several
scripts (or one script on several machines) write into one page, each replacing only its own."""

from __future__ import annotations

from pathlib import Path

KEPT = "<!-- below: written by hand, kept when this script rewrites the page -->"


def kept_tail(page: Path) -> str:
    """The page's part from the KEPT marker on, which a script rewriting the page above it keeps."""
    text = page.read_text() if page.exists() else ""
    return "\n" + text[text.index(KEPT) :] if KEPT in text else ""


def write_section(page: Path, key: str, text: str, heading: str, intro: str) -> None:
    """Put `text` between the markers named `key` (replacing what was there), else at the end under `heading`
    (added once, with `intro`, below the KEPT marker, added where missing), so a rewrite of the page keeps it."""
    start, end = f"<!-- {key}: written by a script, see its Reproduce line -->", f"<!-- /{key} -->"
    content = page.read_text() if page.exists() else ""
    block = f"{start}\n{text.rstrip()}\n{end}"
    if start in content:
        head, rest = content.split(start, 1)
        content = head + block + rest.split(end, 1)[1]
    else:
        if KEPT not in content:
            content = content.rstrip("\n") + f"\n\n{KEPT}\n"
        if heading not in content:
            content = content.rstrip("\n") + f"\n\n{heading}\n\n{intro}\n"
        content = content.rstrip("\n") + f"\n\n{block}\n"
    page.write_text(content)
