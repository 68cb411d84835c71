"""``scimledger replay``: one workspace's read model as of a time, rebuilt into its own PostgreSQL schema
(issue 7, "Replay"), so that an auditor asks the past with plain SQL:
``SELECT user_name, status FROM audit_2026_03.scim_users``.

- What is replayed: every event of the workspace recorded at or before ``until`` (``recorded_at`` never
  decreases in position order, so that is a prefix of its log; no ``until`` means the head), read in keyset
  batches of positions from one REPEATABLE READ snapshot, decoded by the live mapper from the bytes the chain
  covers (``state``, ``metadata::text``), and applied by the live inline projections (``projections.INLINE``).
- Where: the read-model tables of ``schema.sql`` section 5, created inside the target schema, with the
  transaction's ``search_path`` set to that schema alone, so every projection statement (the drift
  projection reads ``scim_users`` and ``scim_groups``) resolves to the replay's tables and never falls back to
  the live ones. The log is read by its schema-qualified name. The replay runs on a connection of its own,
  closed afterwards: asyncpg caches prepared statements per connection, and none of them must outlive the
  ``search_path`` they were planned under.
- The outbox is not replayed: it is the lagging work queue of the notification sender, whose meaning (sent or
  not) lives in ``outbox_delivery``, outside the log; "as of T" is not defined for a projection that lags,
  and what it was queued from is in the audit log itself (``MemberSessionsRevoked``, ...). Operational
  tables kept outside the log (``token_usage``, ``outbox_delivery``) are not created either.
- All in one transaction: a failed replay leaves no schema behind (and ``replace`` keeps the old one). An
  existing schema is replaced only when asked and only when an earlier replay made it (its comment says so).
"""

from __future__ import annotations

import re
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson
from eventsourcing.persistence import StoredEvent

from projections import INLINE, Envelope
from projections.base import Projection
from scimledger import pg
from scimledger.audit.entries import timestamp
from scimledger.store import keys
from scimledger.store.mapper import build_mapper

BATCH = 2000
PROJECTIONS: tuple[Projection, ...] = INLINE
WANTED = sorted({t for p in PROJECTIONS for t in p.event_types})  # other events change no replayed table
MARK = "scimledger replay"  # the schema comment that marks a schema this command made (and may replace)
_IDENTIFIER = re.compile(r"[a-z_][a-z0-9_]{0,62}")
_SECTION = re.compile(r"^-- (\d+)\. ", re.MULTILINE)

Progress = Callable[[int, int], None]
"""Called with (events applied so far, events to apply) at the start and after every batch."""


class ReplayError(Exception):
    """A replay refused before or instead of changing anything; ``str()`` is one line for the operator."""


@dataclass(frozen=True)
class ReplaySummary:
    schema: str
    workspace_id: UUID
    until: datetime | None
    position: int  # the last log position included
    events: int  # the workspace's events up to ``until``
    applied: int  # those a replayed projection reads
    tables: dict[str, int]  # row counts

    def as_dict(self) -> dict[str, Any]:
        return {
            "schema": self.schema,
            "workspace": str(self.workspace_id),
            "until": timestamp(self.until) if self.until else None,
            "position": self.position,
            "events": self.events,
            "applied": self.applied,
            "tables": self.tables,
        }


def parse_until(text: str) -> datetime:
    """An RFC 3339 date-time with an offset (``2026-03-01T00:00:00Z``); a time without one is refused
    rather than guessed."""
    try:
        parsed = datetime.fromisoformat(text)
    except ValueError:
        raise ReplayError(f"--until {text!r} is not an RFC 3339 time such as 2026-03-01T00:00:00Z") from None
    if parsed.tzinfo is None:
        raise ReplayError(f"--until {text!r} has no time zone: add one, e.g. {text}Z")
    return parsed


def check_schema_name(name: str) -> None:
    """A name the auditor can type unquoted: a plain lower-case identifier that is none of PostgreSQL's own
    schemas. (Reserved words and the live schema are checked against the database in ``replay``.)"""
    if not _IDENTIFIER.fullmatch(name):
        raise ReplayError(
            f"schema name {name!r} must be a plain lower-case SQL identifier "
            "(a-z, 0-9 and _, not starting with a digit, at most 63 characters)"
        )
    if name in ("public", "information_schema") or name.startswith("pg_"):
        raise ReplayError(f"schema name {name!r} is reserved: choose another, e.g. audit_2026_03")


def read_model_ddl(schema_sql: str) -> str:
    """Section 5 of ``schema.sql`` (the read models), up to the next numbered section header."""
    headers = list(_SECTION.finditer(schema_sql))
    for i, header in enumerate(headers):
        if header.group(1) == "5":
            end = headers[i + 1].start() if i + 1 < len(headers) else len(schema_sql)
            return schema_sql[header.start() : end]
    raise RuntimeError("schema.sql has no section 5 (read models)")


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


def _literal(text: str) -> str:
    return "'" + text.replace("'", "''") + "'"


async def replay(
    url: str,
    workspace_id: UUID,
    *,
    until: datetime | None,
    schema: str,
    replace: bool = False,
    progress: Progress | None = None,
    batch: int = BATCH,
) -> ReplaySummary:
    """Rebuild ``workspace_id``'s read model as of ``until`` (None: the head) into ``schema``, on a dedicated
    connection to ``url`` (a role that may create schemas: the owner's). Raises ReplayError."""
    check_schema_name(schema)
    if until is not None and until.tzinfo is None:
        raise ReplayError("until needs a time zone")
    single = await pg.create_pool(url, min_size=1, max_size=1)  # the app's codecs, on its own connection
    try:
        async with single.acquire() as conn:
            return await _replay(conn, workspace_id, until, schema, replace, progress, batch)
    finally:
        await single.close()


async def _replay(
    conn: asyncpg.Connection,
    workspace_id: UUID,
    until: datetime | None,
    schema: str,
    replace: bool,
    progress: Progress | None,
    batch: int,
) -> ReplaySummary:
    live = await conn.fetchval("SELECT current_schema()")
    if live is None:
        raise ReplayError("no schema on this role's search_path holds the log")
    if schema == live:
        raise ReplayError(f"schema {schema!r} holds the live tables: choose another, e.g. audit_2026_03")
    if await conn.fetchval("SELECT catcode IN ('R', 'T') FROM pg_get_keywords() WHERE word = $1", schema):
        raise ReplayError(f"schema name {schema!r} is an SQL reserved word: choose another")
    log = f"{_quote(live)}.events"
    async with conn.transaction(isolation="repeatable_read"):
        scope = await conn.fetchrow(
            f"""SELECT count(*) AS events, count(*) FILTER (WHERE event_type = ANY($3::text[])) AS applied,
                       coalesce(max(position), 0) AS last
                  FROM {log} WHERE workspace_id = $1 AND ($2::timestamptz IS NULL OR recorded_at <= $2)""",
            workspace_id,
            until,
            WANTED,
        )
        if scope["events"] == 0:
            await _explain_empty(conn, log, workspace_id)
        await _create_schema(conn, schema, replace)
        await _apply_log(conn, log, workspace_id, scope["last"], scope["applied"], progress, batch)
        tables = {
            t: int(await conn.fetchval(f"SELECT count(*) FROM {_quote(t)}"))
            for p in PROJECTIONS
            for t in p.tables
        }
        summary = ReplaySummary(
            schema, workspace_id, until, scope["last"], scope["events"], scope["applied"], tables
        )
        about = f"{MARK} of workspace {workspace_id} as of {summary.as_dict()['until'] or 'the head'}"
        about += f" (log position {summary.position}, {summary.events} events)"
        await conn.execute(f"COMMENT ON SCHEMA {_quote(schema)} IS {_literal(about)}")
    return summary


async def _apply_log(
    conn: asyncpg.Connection,
    log: str,
    workspace_id: UUID,
    last: int,
    total: int,
    progress: Progress | None,
    batch: int,
) -> None:
    """The workspace's events up to position ``last``, in keyset batches, through the live projections."""
    mapper = build_mapper()
    after, done = 0, 0
    if progress:
        progress(done, total)
    while True:
        rows = await conn.fetch(
            f"""SELECT position, stream_id, stream_version, event_type, state, metadata::text AS metadata
                  FROM {log}
                 WHERE workspace_id = $1 AND position > $2 AND position <= $3 AND event_type = ANY($4::text[])
                 ORDER BY position LIMIT $5""",
            workspace_id,
            after,
            last,
            WANTED,
            batch,
        )
        if not rows:
            return
        # Personal data (issue 11): the keys to open it, read afresh from the key table beside the log.
        stored = [StoredEvent(row[1], row[2], row[3], row[4]) for row in rows]
        await keys.ready(conn, stored, fresh=True, table=log.removesuffix("events") + "personal_keys")
        for row in rows:
            envelope = Envelope(
                workspace_id=workspace_id,
                event_type=row["event_type"],
                event=mapper.to_domain_event(StoredEvent(row[1], row[2], row[3], row[4])),
                metadata=orjson.loads(row["metadata"]),
                position=row["position"],
            )
            for projection in PROJECTIONS:
                if envelope.event_type in projection.event_types:
                    await projection.apply(conn, envelope)
        after, done = rows[-1]["position"], done + len(rows)
        if progress:
            progress(done, total)


async def _explain_empty(conn: asyncpg.Connection, log: str, workspace_id: UUID) -> None:
    first = await conn.fetchval(f"SELECT min(recorded_at) FROM {log} WHERE workspace_id = $1", workspace_id)
    if first is None:
        raise ReplayError(f"no workspace {workspace_id} in the log")
    raise ReplayError(
        f"workspace {workspace_id} has no events at or before --until (its first is at {timestamp(first)})"
    )


async def _create_schema(conn: asyncpg.Connection, schema: str, replace: bool) -> None:
    """The schema with empty read-model tables, and the transaction's ``search_path`` set to it alone."""
    existing = await conn.fetchrow(
        "SELECT obj_description(oid, 'pg_namespace') AS about FROM pg_namespace WHERE nspname = $1", schema
    )
    if existing is not None:
        if not replace:
            raise ReplayError(f"schema {schema!r} already exists: add --replace to drop and rebuild it")
        if not (existing["about"] or "").startswith(MARK):
            raise ReplayError(
                f"schema {schema!r} exists and was not made by scimledger replay: not dropping it"
            )
        await conn.execute(f"DROP SCHEMA {_quote(schema)} CASCADE")
    try:
        await conn.execute(f"CREATE SCHEMA {_quote(schema)}")
    except asyncpg.DuplicateSchemaError:  # created by a concurrent replay since our snapshot
        raise ReplayError(f"schema {schema!r} already exists: add --replace to drop and rebuild it") from None
    except asyncpg.InsufficientPrivilegeError as error:  # e.g. the server's least-privilege role
        raise ReplayError(
            f"{error.message}: replay creates a schema, so run it as the owner (SCIMLEDGER_MIGRATE_URL)"
        ) from None
    await conn.execute(f"SET LOCAL search_path TO {_quote(schema)}")
    await conn.execute(read_model_ddl(pg.schema_sql()))
    created = {
        r["tablename"]
        for r in await conn.fetch("SELECT tablename FROM pg_tables WHERE schemaname = $1", schema)
    }
    replayed = {t for p in PROJECTIONS for t in p.tables}
    if missing := replayed - created:
        raise RuntimeError(f"schema.sql section 5 does not create {sorted(missing)}")
    for table in sorted(created - replayed):  # the outbox and operational tables: not replayed
        await conn.execute(f"DROP TABLE {_quote(table)}")
