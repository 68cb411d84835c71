"""The asyncpg recorder of the append-only log (``schema.sql``).

All writes go through ``scimledger_append`` (one round trip per command). Reads: the events of streams
(with their latest snapshot), one workspace's log in position order, and the whole log in its (tx, position)
order up to the horizon, for lagging projections and rebuilds (docs/write-path.md, "The order of the log").
"""

from __future__ import annotations

import re
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from eventsourcing.persistence import Notification, StoredEvent

_KEY = re.compile(r"\(stream_id, stream_version\)=\(([0-9a-f-]{36}), (\d+)\)")


class VersionConflict(Exception):
    """Another writer appended to ``stream_id`` first (optimistic concurrency)."""

    def __init__(self, stream_id: UUID | None) -> None:
        super().__init__(f"version conflict on stream {stream_id}")
        self.stream_id = stream_id


@dataclass(frozen=True)
class LoggedEvent:
    """One row of the log, as projections and auditors read it."""

    position: int
    workspace_id: UUID
    stored: StoredEvent
    metadata: dict[str, Any]
    tx: int = 0


@dataclass(frozen=True, order=True)
class LogCursor:
    """A place in the log's order (tx, position): a reader has read every event up to and including it.
    ``LogCursor()`` is the start of the log; ``LogCursor(h, 0)`` means every event with tx < h."""

    tx: int = 0
    position: int = 0


async def horizon(conn: asyncpg.Connection | asyncpg.Pool) -> int:
    """The oldest transaction that may still be running: every event with a smaller tx is committed (or
    never will be), so a reader that stops below it never sees a later event before an earlier one."""
    return int(await conn.fetchval("SELECT pg_snapshot_xmin(pg_current_snapshot())::text::bigint"))


def _json_view(state: bytes) -> str | None:
    """The jsonb view of an event's bytes, when they are JSON (they always are for our own events)."""
    try:
        orjson.loads(state)
    except orjson.JSONDecodeError:
        return None
    return state.decode()


async def append(
    conn: asyncpg.Connection,
    workspace_id: UUID,
    events: Sequence[StoredEvent],
    metadata: dict[str, Any] | Sequence[dict[str, Any]],
) -> list[int]:
    """Append ``events`` atomically; returns their positions. ``metadata`` is one dict for all events, or
    one per event. Raises VersionConflict."""
    if not events:
        return []
    metadatas = [metadata] * len(events) if isinstance(metadata, dict) else list(metadata)
    try:
        positions = await conn.fetchval(
            "SELECT scimledger_append($1, $2, $3, $4, $5, $6::jsonb[], $7::jsonb[])",
            workspace_id,
            [e.originator_id for e in events],
            [e.originator_version for e in events],
            [e.topic for e in events],
            [e.state for e in events],
            [_json_view(e.state) for e in events],
            metadatas,
        )
    except asyncpg.UniqueViolationError as error:
        if error.constraint_name != "events_stream_version_key":
            raise
        match = _KEY.search(error.detail or "")
        raise VersionConflict(UUID(match.group(1)) if match else None) from error
    return list(positions)


async def load_streams(
    conn: asyncpg.Connection | asyncpg.Pool, stream_ids: Sequence[UUID]
) -> dict[UUID, tuple[StoredEvent | None, list[StoredEvent]]]:
    """Latest snapshot (if any) and the events after it, for each stream, in one round trip."""
    rows = await conn.fetch(
        """
        SELECT stream_id, stream_version, topic, state, true AS is_snapshot
          FROM snapshots WHERE stream_id = ANY($1::uuid[])
        UNION ALL
        SELECT e.stream_id, e.stream_version, e.event_type, e.state, false
          FROM events e
         WHERE e.stream_id = ANY($1::uuid[])
           AND e.stream_version > coalesce(
                 (SELECT s.stream_version FROM snapshots s WHERE s.stream_id = e.stream_id), 0)
         ORDER BY 1, 5 DESC, 2
        """,
        list(stream_ids),
    )
    out: dict[UUID, tuple[StoredEvent | None, list[StoredEvent]]] = {}
    for row in rows:
        stored = StoredEvent(row["stream_id"], row["stream_version"], row["topic"], row["state"])
        _, events = out.setdefault(row["stream_id"], (None, []))
        if row["is_snapshot"]:
            out[row["stream_id"]] = (stored, events)
        else:
            events.append(stored)
    return out


async def save_snapshot(conn: asyncpg.Connection | asyncpg.Pool, snapshot: StoredEvent) -> None:
    await conn.execute(
        """
        INSERT INTO snapshots (stream_id, stream_version, topic, state) VALUES ($1, $2, $3, $4)
        ON CONFLICT (stream_id) DO UPDATE SET stream_version = EXCLUDED.stream_version,
               topic = EXCLUDED.topic, state = EXCLUDED.state
         WHERE snapshots.stream_version < EXCLUDED.stream_version
        """,
        snapshot.originator_id,
        snapshot.originator_version,
        snapshot.topic,
        snapshot.state,
    )


async def select_events(
    conn: asyncpg.Connection | asyncpg.Pool,
    stream_id: UUID,
    *,
    gt: int | None = None,
    lte: int | None = None,
    desc: bool = False,
    limit: int | None = None,
) -> list[StoredEvent]:
    """The events of one stream, filtered and ordered by version."""
    rows = await conn.fetch(
        f"""
        SELECT stream_id, stream_version, event_type, state FROM events
         WHERE stream_id = $1 AND ($2::bigint IS NULL OR stream_version > $2)
           AND ($3::bigint IS NULL OR stream_version <= $3)
         ORDER BY stream_version {"DESC" if desc else "ASC"} LIMIT $4
        """,
        stream_id,
        gt,
        lte,
        limit,
    )
    return [StoredEvent(r[0], r[1], r[2], r[3]) for r in rows]


async def select_log(
    conn: asyncpg.Connection | asyncpg.Pool,
    *,
    after: LogCursor = LogCursor(),
    below_tx: int | None = None,
    limit: int = 1000,
    event_types: Sequence[str] = (),
) -> list[LoggedEvent]:
    """The whole log in (tx, position) order, after ``after`` and with tx below ``below_tx`` (a ``horizon``
    taken by an earlier statement; None only when nothing can append, e.g. under the freeze lock)."""
    rows = await conn.fetch(
        """
        SELECT position, workspace_id, stream_id, stream_version, event_type, state, metadata,
               tx::text::bigint
          FROM events
         WHERE (tx, position) > ($1::text::xid8, $2::bigint)
           AND ($3::bigint IS NULL OR tx < $3::text::xid8)
           AND (cardinality($4::text[]) = 0 OR event_type = ANY($4::text[]))
         ORDER BY tx, position LIMIT $5
        """,
        str(after.tx),
        after.position,
        below_tx,
        list(event_types),
        limit,
    )
    return [LoggedEvent(r[0], r[1], StoredEvent(r[2], r[3], r[4], r[5]), r[6], r[7]) for r in rows]


async def select_workspace_log(
    conn: asyncpg.Connection | asyncpg.Pool,
    workspace_id: UUID,
    *,
    after: int = 0,
    limit: int = 1000,
    stop: int | None = None,
    event_types: Sequence[str] = (),
) -> list[LoggedEvent]:
    """One workspace's log in position order (its commit order), after ``after``, up to ``stop``."""
    rows = await conn.fetch(
        """
        SELECT position, workspace_id, stream_id, stream_version, event_type, state, metadata,
               tx::text::bigint
          FROM events
         WHERE workspace_id = $1 AND position > $2 AND ($3::bigint IS NULL OR position <= $3)
           AND (cardinality($4::text[]) = 0 OR event_type = ANY($4::text[]))
         ORDER BY position LIMIT $5
        """,
        workspace_id,
        after,
        stop,
        list(event_types),
        limit,
    )
    return [LoggedEvent(r[0], r[1], StoredEvent(r[2], r[3], r[4], r[5]), r[6], r[7]) for r in rows]


def as_notification(logged: LoggedEvent) -> Notification:
    s = logged.stored
    return Notification(
        id=logged.position,
        originator_id=s.originator_id,
        originator_version=s.originator_version,
        topic=s.topic,
        state=s.state,
    )


async def max_workspace_position(conn: asyncpg.Connection | asyncpg.Pool, workspace_id: UUID) -> int | None:
    value = await conn.fetchval("SELECT max(position) FROM events WHERE workspace_id = $1", workspace_id)
    return int(value) if value is not None else None
