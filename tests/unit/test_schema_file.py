"""The schema ships inside the package (an installed wheel migrates without the source tree) and is the
top-level ``schema.sql`` itself, not a copy that could drift."""

from __future__ import annotations

from pathlib import Path

from scimledger import pg

TOP_LEVEL = Path(__file__).resolve().parents[2] / "schema.sql"


def test_the_packaged_schema_is_the_top_level_file() -> None:
    assert pg.schema_sql() == TOP_LEVEL.read_text()
