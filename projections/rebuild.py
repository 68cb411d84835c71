"""Rebuild every projection from position 0 and compare it with the live tables by digest.

Runs in one transaction holding the append lock, so the log cannot move while the tables are compared.
With ``verify`` a mismatch rolls the rebuild back (the live tables stay for inspection) and is reported.
"""

from __future__ import annotations

from dataclasses import dataclass

import asyncpg

from projections import ALL, LAGGING
from projections.base import Projection
from projections.runner import BATCH as RUNNER_BATCH
from projections.runner import apply_batch
from scimledger.store.event_store import load_log_envelopes
from scimledger.store.mapper import build_mapper

APPEND_LOCK = 7243002
BATCH = 2000


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


async def _replay(conn: asyncpg.Connection, projections: tuple[Projection, ...]) -> None:
    mapper = build_mapper()
    wanted = sorted({t for p in projections for t in p.event_types})
    after = 0
    while True:
        envelopes = await load_log_envelopes(conn, mapper, after=after, limit=BATCH, event_types=wanted)
        if not envelopes:
            break
        for envelope in envelopes:
            for projection in projections:
                if envelope.event_type in projection.event_types:
                    await projection.apply(conn, envelope)
        assert envelopes[-1].position is not None
        after = envelopes[-1].position
    head = await conn.fetchval("SELECT coalesce(max(position), 0) FROM events")
    for projection in LAGGING:
        if projection in projections:
            await conn.execute(
                """INSERT INTO projection_tracking (projection, position) VALUES ($1, $2)
                   ON CONFLICT (projection) DO UPDATE SET position = EXCLUDED.position""",
                projection.name,
                head,
            )


async def rebuild(
    pool: asyncpg.Pool, *, verify: bool, projections: tuple[Projection, ...] = ALL
) -> list[TableDigest]:
    """Rebuild ``projections``; returns the digests. With ``verify``, a difference raises RebuildMismatch."""
    tables = [t for p in projections for t in p.tables]
    async with pool.acquire() as conn:
        tx = conn.transaction()
        await tx.start()
        try:
            await conn.execute("SET LOCAL lock_timeout = '60s'")  # fail loudly rather than wait forever
            await conn.execute("SELECT pg_advisory_xact_lock($1)", APPEND_LOCK)
            mapper = build_mapper()
            for projection in LAGGING:  # bring the live lagging tables to the head first
                while await apply_batch(conn, projection, mapper) == RUNNER_BATCH:
                    pass
            live = {t: await table_digest(conn, t) for t in tables}
            await conn.execute(f"TRUNCATE {', '.join(tables)}")
            await _replay(conn, projections)
            digests = [TableDigest(t, live[t], await table_digest(conn, t)) for t in tables]
            if verify and not all(d.equal for d in digests):
                raise RebuildMismatch(digests)
        except BaseException:
            await tx.rollback()
            raise
        await tx.commit()
    return digests
