"""The audit export: every event of a workspace, streamed as NDJSON or CSV with constant memory.

Issue 7, "Audit API": ``GET /api/v1/audit/export`` and ``scimledger audit export`` write the same bytes
from this module. Rows are read in keyset batches (``position > last``, ``BATCH`` rows at a time, one short
query each on ``events_workspace_position``), so memory does not grow with the log and no transaction
stays open while a slow client reads. The export stops at the workspace's last position when it started
(events appended meanwhile are left for the next export); positions are commit-ordered, so a batch never
misses an event committed before it.

Internal events are included: an offline verifier recomputes the hash chain from every event.
NDJSON: one ``entries.export_record`` per line (the format the offline verifier reads; keep it exact).
CSV (RFC 4180): a header, then one row per event with the audit entry's fields, the actor flattened and
``data`` as JSON text; a cell a spreadsheet would run as a formula (``= + - @``, tab, CR) gets a ``'``.
"""

from __future__ import annotations

import contextlib
import csv
import io
import os
import sys
from collections.abc import AsyncIterator, Callable, Iterator, Sequence
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any, BinaryIO, Literal
from uuid import UUID

import asyncpg
import orjson

from scimledger.audit import entries
from scimledger.audit.log_query import SqlArgs, fetch_planned_for_values, position_bounds
from scimledger.domain.errors import UnknownResource
from scimledger.progress import Progress

Format = Literal["ndjson", "csv"]
MEDIA_TYPES: dict[str, str] = {"ndjson": "application/x-ndjson", "csv": "text/csv; charset=utf-8"}
BATCH = 1000

CSV_COLUMNS = (
    "position",
    "recorded_at",
    "type",
    "stream_id",
    "stream_version",
    "actor_kind",
    "actor_id",
    "actor_name",
    "source",
    "request_id",
    "user_agent",
    "client_addr",
    "data",
    "hash",
)
_FORMULA_STARTS = ("=", "+", "-", "@", "\t", "\r")


@dataclass(frozen=True)
class ExportRange:
    """A workspace's events recorded in ``[since, until)`` (either open)."""

    workspace_id: UUID
    since: datetime | None = None
    until: datetime | None = None

    def filename(self, fmt: Format) -> str:
        return f"audit-{self.workspace_id}.{fmt}"


def _where(selected: ExportRange, upto: int, args: SqlArgs) -> str:
    workspace = args(selected.workspace_id)
    conditions = [
        f"workspace_id = {workspace}",
        f"position <= {args(upto)}",
        *position_bounds(args, workspace, selected.since, selected.until),
    ]
    return " AND ".join(conditions)


async def last_position(pool: asyncpg.Pool, selected: ExportRange) -> int:
    """The workspace's last position now: where this export ends (0 for a workspace without events)."""
    value = await pool.fetchval(
        "SELECT position FROM events WHERE workspace_id = $1 ORDER BY position DESC LIMIT 1",
        selected.workspace_id,
    )
    return int(value or 0)


async def count(pool: asyncpg.Pool, selected: ExportRange, upto: int) -> int:
    """How many events an export up to ``upto`` writes (the progress bar's total)."""
    args = SqlArgs()
    where = _where(selected, upto, args)
    return int(await pool.fetchval(f"SELECT count(*) FROM events WHERE {where}", *args.values))


def batch_query(selected: ExportRange, upto: int, after: int, size: int) -> tuple[str, list[Any]]:
    """The SQL of one batch: up to ``size`` selected rows after position ``after``."""
    args = SqlArgs()
    where = _where(selected, upto, args)
    sql = (
        f"SELECT {entries.COLUMNS} FROM events WHERE {where} AND position > {args(after)}"
        f" ORDER BY position LIMIT {args(size)}"
    )
    return sql, args.values


async def batches(
    pool: asyncpg.Pool, selected: ExportRange, upto: int, size: int = BATCH
) -> AsyncIterator[list[asyncpg.Record]]:
    """The selected rows up to ``upto`` in position order, ``size`` at a time (keyset pagination)."""
    after = 0
    while True:
        sql, args = batch_query(selected, upto, after, size)
        rows = await fetch_planned_for_values(pool, sql, args, in_index_order=True)
        if rows:
            yield rows
        if len(rows) < size:
            return
        after = rows[-1]["position"]


def ndjson(rows: Sequence[asyncpg.Record]) -> bytes:
    """One export record per line."""
    return b"".join(orjson.dumps(entries.export_record(row)) + b"\n" for row in rows)


def _cell(value: Any) -> Any:
    if isinstance(value, str) and value.startswith(_FORMULA_STARTS):
        return "'" + value
    return value


def csv_header() -> bytes:
    out = io.StringIO()
    csv.writer(out, lineterminator="\r\n").writerow(CSV_COLUMNS)
    return out.getvalue().encode()


def csv_rows(rows: Sequence[asyncpg.Record]) -> bytes:
    """One CSV row per event (columns: CSV_COLUMNS)."""
    out = io.StringIO()
    writer = csv.writer(out, lineterminator="\r\n")
    for row in rows:
        entry = entries.entry(row)
        actor = entry["actor"]
        writer.writerow(
            [
                _cell(value)
                for value in (
                    entry["position"],
                    entry["recorded_at"],
                    entry["type"],
                    entry["stream_id"],
                    entry["stream_version"],
                    actor["kind"],
                    actor["id"],
                    actor["name"],
                    entry["source"],
                    entry["request_id"],
                    entry["user_agent"],
                    entry["client_addr"],
                    orjson.dumps(entry["data"]).decode(),
                    entry["hash"],
                )
            ]
        )
    return out.getvalue().encode()


async def chunks(
    pool: asyncpg.Pool,
    selected: ExportRange,
    fmt: Format,
    upto: int,
    on_rows: Callable[[int], None] | None = None,
) -> AsyncIterator[bytes]:
    """The export as a sequence of byte chunks, one per batch (CSV: the header first). ``on_rows`` is told
    how many rows each chunk holds (the CLI's progress bar)."""
    if fmt == "csv":
        yield csv_header()
    encode = csv_rows if fmt == "csv" else ndjson
    async for rows in batches(pool, selected, upto):
        yield encode(rows)
        if on_rows is not None:
            on_rows(len(rows))


# --- the CLI: ``scimledger audit export`` ------------------------------------------------------------------
async def workspace_exists(pool: asyncpg.Pool, workspace_id: UUID) -> bool:
    return bool(
        await pool.fetchval("SELECT EXISTS (SELECT 1 FROM events WHERE workspace_id = $1)", workspace_id)
    )


async def write(pool: asyncpg.Pool, selected: ExportRange, fmt: Format, out: BinaryIO) -> int:
    """Write the export to ``out`` with a progress bar on a terminal; the number of events written.
    UnknownResource when the workspace has no events (it does not exist)."""
    if not await workspace_exists(pool, selected.workspace_id):
        raise UnknownResource(f"workspace {selected.workspace_id} not found")
    upto = await last_position(pool, selected)
    progress = Progress("export", await count(pool, selected, upto))
    try:
        async for chunk in chunks(pool, selected, fmt, upto, progress.advance):
            out.write(chunk)
    finally:
        progress.close()
    out.flush()
    return progress.done


@contextlib.contextmanager
def output(path: str | None) -> Iterator[BinaryIO]:
    """stdout, or ``path`` written under a temporary name and renamed when complete (a failed export
    leaves no partial file behind)."""
    if path is None:
        yield sys.stdout.buffer
        return
    partial = Path(f"{path}.partial")
    try:
        with partial.open("wb") as out:
            yield out
        os.replace(partial, path)
    finally:
        partial.unlink(missing_ok=True)
