"""Verifying an exported NDJSON file with no database (issue 7: ``scimledger audit verify --file``).

Each line is one ``entries.export_record``: the fields the chain hashes (position, workspace, stream id and
version, type, ``recorded_at`` to the microsecond, ``state`` as UTF-8 text, ``metadata_text``, ``prev_hash``,
``hash``) and the fields an auditor reads (``data``, ``actor``, ``source``, ...). The chain is recomputed
line by line from the hashed fields, per workspace, from genesis; and each line must be exactly the record
those hashed fields render to, so an edited ``data`` or ``actor`` is caught even though the chain does not
hash them directly. With a checkpoint's anchor, the file must also extend the checkpoint.

No database is involved: nothing here connects to one (a test runs the CLI with none reachable). The file is
read one line at a time (constant memory but for one chain head per workspace).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from datetime import UTC, datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson

from scimledger import chain
from scimledger.audit import entries

# The hashed fields of an export line and their JSON types.
HASHED = {
    "workspace_id": str,
    "position": int,
    "stream_id": str,
    "stream_version": int,
    "type": str,
    "recorded_at": str,
    "state": str,
    "metadata_text": str,
    "prev_hash": str,
    "hash": str,
}
METADATA_FIELDS = frozenset({"actor", "source", "request_id", "user_agent", "client_addr"})


class InvalidExport(ValueError):
    """A line that is not an export record at all (not JSON, a hashed field missing or mistyped)."""

    def __init__(self, line: int, message: str) -> None:
        super().__init__(f"line {line}: {message}")
        self.line = line


def _uuid(value: str, line: int, name: str) -> UUID:
    try:
        return UUID(value)
    except ValueError:
        raise InvalidExport(line, f"{name} is not a uuid") from None


def _bytes(value: str, line: int, name: str) -> bytes:
    try:
        return bytes.fromhex(value)
    except ValueError:
        raise InvalidExport(line, f"{name} is not hex") from None


def _row(record: Any, line: int) -> dict[str, Any]:
    """The log row a record claims to come from (the columns ``entries.COLUMNS`` selects)."""
    if not isinstance(record, dict):
        raise InvalidExport(line, "not a JSON object")
    for name, kind in HASHED.items():
        value = record.get(name)
        if not isinstance(value, kind) or isinstance(value, bool):
            raise InvalidExport(line, f"{name} is missing or not a {kind.__name__}")
    try:
        recorded_at = datetime.strptime(record["recorded_at"], chain.TIMESTAMP_FORMAT).replace(tzinfo=UTC)
    except ValueError:
        raise InvalidExport(line, "recorded_at is not YYYY-MM-DDTHH:MM:SS.ffffffZ") from None
    return {
        "position": record["position"],
        "workspace_id": _uuid(record["workspace_id"], line, "workspace_id"),
        "stream_id": _uuid(record["stream_id"], line, "stream_id"),
        "stream_version": record["stream_version"],
        "event_type": record["type"],
        "state": record["state"].encode(),
        "metadata_text": record["metadata_text"],
        "recorded_at": recorded_at,
        "prev_hash": _bytes(record["prev_hash"], line, "prev_hash"),
        "hash": _bytes(record["hash"], line, "hash"),
    }


def _json(value: Any) -> bytes:
    return orjson.dumps(value, option=orjson.OPT_SORT_KEYS)


def shown_disagreement(row: Mapping[str, Any], record: Mapping[str, Any]) -> tuple[str, str] | None:
    """(reason, detail) when the record is not exactly what its hashed fields render to
    (``entries.export_record``), else None. Values compare as JSON: ``true`` is not ``1``."""
    try:
        expected = entries.export_record(row, shown=record)  # sealed fields: see export_record
    except (ValueError, TypeError, AttributeError):
        return chain.RECORD_DIFFERS, "state or metadata_text cannot be decoded as an audit entry"
    if _json(expected) == _json(record):
        return None
    field = next(k for k in sorted({*expected, *record}) if _json(expected.get(k)) != _json(record.get(k)))
    if field == "data":
        return chain.DATA_DIFFERS, "the field 'data' is not the event's hashed bytes (state)"
    if field in METADATA_FIELDS:
        return chain.METADATA_DIFFERS, f"the field {field!r} is not what metadata_text says"
    return chain.RECORD_DIFFERS, f"the field {field!r} is not what the hashed fields say"


def verify_lines(
    lines: Iterable[bytes | str], anchors: Mapping[UUID, chain.Anchor] | None = None
) -> list[chain.ChainReport]:
    """Every workspace's chain in the export, in line order; raises InvalidExport at a line that is no
    record. A workspace with an anchor but no lines is reported as not extending its checkpoint."""
    anchors = anchors or {}
    walks = {w: chain.ChainWalk(w, a) for w, a in anchors.items()}
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            record = orjson.loads(line)
        except orjson.JSONDecodeError:
            raise InvalidExport(number, "not JSON") from None
        row = _row(record, number)
        walk = walks.get(row["workspace_id"])
        if walk is None:
            walk = walks[row["workspace_id"]] = chain.ChainWalk(row["workspace_id"], None)
        walk.step(
            row["position"],
            row["stream_id"],
            row["stream_version"],
            row["event_type"],
            record["recorded_at"],
            row["state"],
            row["metadata_text"],
            row["prev_hash"],
            row["hash"],
            None if walk.broken else shown_disagreement(row, record),
        )
    return [walks[w].report() for w in sorted(walks, key=str)]


def verify_file(path: Path, anchors: Mapping[UUID, chain.Anchor] | None = None) -> list[chain.ChainReport]:
    """``verify_lines`` over an NDJSON file, read line by line."""
    with path.open("rb") as lines:
        return verify_lines(lines, anchors)
