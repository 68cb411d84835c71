"""Rebuild every projection from position 0 and compare it with the live tables by digest.

The log's freeze lock is held (exclusively, at session level) for the whole rebuild: every append takes it in
shared mode, so the log cannot move while the tables are rebuilt and compared (docs/write-path.md). The
projections' own ``apply`` code replays the log into temporary tables of the same definition (``LIKE ...
INCLUDING ALL``), which shadow the live ones for this connection only (``pg_temp`` comes first in name
resolution), one transaction per batch of events: a row updated by every event of its kind (a workspace's seat
counters) then keeps a short version chain instead of one that grows with the whole log (all of a rebuild in
one transaction made it quadratic: bench/audit.py). The live tables stay readable meanwhile. Then the digests
are compared: equal tables are left as they are; with ``verify`` a mismatch is reported and the live tables
stay for inspection; without it the rebuilt rows replace the live ones in one transaction.
"""

from __future__ import annotations

import contextlib
from dataclasses import dataclass

import asyncpg

from projections import ALL, LAGGING
from projections.base import Projection
from projections.runner import BATCH as RUNNER_BATCH
from projections.runner import apply_batch, track
from scimledger.store.event_store import load_log_envelopes
from scimledger.store.mapper import build_mapper
from scimledger.store.recorder import LogCursor

FREEZE_LOCK = 7243002  # scimledger_append takes it shared (schema.sql)
BATCH = 2000  # events per transaction of the replay
TEMP_BUFFERS = "256MB"  # the rebuilt tables are temporary: kept in this backend's local buffers


@dataclass(frozen=True)
class TableDigest:
    table: str
    live: str
    rebuilt: str

    @property
    def equal(self) -> bool:
        return self.live == self.rebuilt


class RebuildMismatch(Exception):
    def __init__(self, digests: list[TableDigest]) -> None:
        super().__init__(
            "rebuilt tables differ from the live ones: " + ", ".join(d.table for d in digests if not d.equal)
        )
        self.digests = digests


async def table_digest(conn: asyncpg.Connection, table: str) -> str:
    """md5 over every row's text form, in a total order: equal digests mean equal tables."""
    value = await conn.fetchval(
        f"SELECT md5(coalesce(string_agg(t::text, E'\\n' ORDER BY t::text), '')) FROM {table} t"
    )
    return str(value)


def _quote(identifier: str) -> str:
    return '"' + identifier.replace('"', '""') + '"'


async def _replay(conn: asyncpg.Connection, projections: tuple[Projection, ...]) -> None:
    """The log through the projections, into whatever their table names resolve to (the temporary
    tables), one transaction per batch, in the log's order (the log is frozen: no horizon needed)."""
    mapper = build_mapper()
    wanted = sorted({t for p in projections for t in p.event_types})
    after = LogCursor()
    while True:
        async with conn.transaction():
            envelopes = await load_log_envelopes(
                conn, mapper, after=after, below_tx=None, limit=BATCH, event_types=wanted
            )
            for envelope in envelopes:
                for projection in projections:
                    if envelope.event_type in projection.event_types:
                        await projection.apply(conn, envelope)
        if not envelopes:
            return
        last = envelopes[-1]
        assert last.tx is not None and last.position is not None
        after = LogCursor(last.tx, last.position)


async def _log_end(conn: asyncpg.Connection) -> LogCursor:
    """The last event in the log's order (the log is frozen)."""
    row = await conn.fetchrow(
        "SELECT tx::text::bigint, position FROM events ORDER BY tx DESC, position DESC LIMIT 1"
    )
    return LogCursor(row[0], row[1]) if row else LogCursor()


async def _track_lagging(
    conn: asyncpg.Connection, projections: tuple[Projection, ...], end: LogCursor
) -> None:
    for projection in LAGGING:
        if projection in projections:
            await track(conn, projection.name, end)


async def rebuild(
    pool: asyncpg.Pool, *, verify: bool, projections: tuple[Projection, ...] = ALL
) -> list[TableDigest]:
    """Rebuild ``projections``; returns the digests. With ``verify``, a difference raises RebuildMismatch."""
    tables = [t for p in projections for t in p.tables]
    async with pool.acquire() as conn:
        live_schema = _quote(str(await conn.fetchval("SELECT current_schema()")))
        await conn.execute("SET lock_timeout = '60s'")  # fail loudly rather than wait forever
        await conn.execute("SELECT pg_advisory_lock($1)", FREEZE_LOCK)
        try:
            await conn.execute("RESET lock_timeout")
            mapper = build_mapper()
            for projection in LAGGING:  # bring the live lagging tables to the head first
                while True:
                    async with conn.transaction():
                        if await apply_batch(conn, projection, mapper, frozen=True) < RUNNER_BATCH:
                            break
            live = {t: await table_digest(conn, f"{live_schema}.{_quote(t)}") for t in tables}
            end = await _log_end(conn)
            await conn.execute(f"SET temp_buffers = '{TEMP_BUFFERS}'")  # no effect once temp tables were used
            try:
                for t in tables:
                    await conn.execute(
                        f"CREATE TEMPORARY TABLE {_quote(t)} (LIKE {live_schema}.{_quote(t)} INCLUDING ALL)"
                    )
                await conn.execute("DISCARD PLANS")  # statements prepared before now name the live tables
                await _replay(conn, projections)
                digests = [
                    TableDigest(t, live[t], await table_digest(conn, f"pg_temp.{_quote(t)}")) for t in tables
                ]
                if verify and not all(d.equal for d in digests):
                    raise RebuildMismatch(digests)
                async with conn.transaction():
                    changed = [d.table for d in digests if not d.equal]
                    if changed:
                        await conn.execute(
                            f"TRUNCATE {', '.join(f'{live_schema}.{_quote(t)}' for t in changed)}"
                        )
                    for t in changed:
                        await conn.execute(
                            f"INSERT INTO {live_schema}.{_quote(t)} SELECT * FROM pg_temp.{_quote(t)}"
                        )
                    await _track_lagging(conn, projections, end)
            finally:
                with contextlib.suppress(asyncpg.PostgresError, OSError):
                    if conn.is_in_transaction():
                        await conn.execute("ROLLBACK")
                    for t in tables:
                        await conn.execute(f"DROP TABLE IF EXISTS pg_temp.{_quote(t)}")
                    await conn.execute("DISCARD PLANS")  # statements prepared meanwhile named the temp tables
        finally:
            with contextlib.suppress(asyncpg.PostgresError, OSError):
                await conn.execute("SELECT pg_advisory_unlock($1)", FREEZE_LOCK)
    return digests
