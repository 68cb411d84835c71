"""The architecture documents stay true to the tree (issue 10: everything a reader needs is in the
repository): every path in docs/architecture.md's map exists, and every document the README links exists."""

from __future__ import annotations

import re
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_every_path_in_the_map_exists() -> None:
    text = (ROOT / "docs" / "architecture.md").read_text()
    section = text[text.index("## Where things are") : text.index("## PostgreSQL")]
    paths = [p for cell in re.findall(r"^\| `([^`]+)`", section, re.M) for p in re.split(r"`, `", cell)]
    assert len(paths) >= 15
    for path in paths:
        assert (ROOT / path.rstrip("/")).exists(), path


def test_the_readme_links_only_to_files_in_the_repository() -> None:
    readme = (ROOT / "README.md").read_text()
    links = re.findall(r"\]\(((?!https?:|#)[^)]+)\)", readme)
    assert "docs/architecture.md" in links and "docs/write-path.md" in links
    for link in links:
        assert (ROOT / link.split("#")[0]).exists(), link
    assert "../shared" not in readme
