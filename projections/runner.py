"""The catch-up runner for lagging projections (LISTEN/NOTIFY plus polling), which then hands new outbox
rows to the notification sender.

Each batch is one transaction that applies the events and moves the projection's tracking row, so a crash
never applies an event twice or skips one. Several runners (one per worker) may run: a batch takes a
transaction-level advisory lock per projection, so only one applies at a time.
"""

from __future__ import annotations

import asyncio
import contextlib
import logging
import zlib
from collections.abc import Awaitable, Callable
from typing import Any

import asyncpg

from projections import LAGGING
from projections.base import Projection
from scimledger.notifications import START, OutboxCursor, Sender, deliver_batch, sender_from_env
from scimledger.store import recorder
from scimledger.store.event_store import load_log_envelopes
from scimledger.store.mapper import build_mapper
from scimledger.store.recorder import LogCursor

log = logging.getLogger("scimledger.projections")
BATCH = 500
POLL_SECONDS = 1.0
RECONNECT_SECONDS = 0.5  # while the LISTEN connection is down
WAIT_SECONDS = 5.0  # catch_up: for transactions running when it is called
SETTLE_SECONDS = 0.05  # after a wake-up, let more events arrive so that one pass applies many


async def apply_batch(
    conn: asyncpg.Connection, projection: Projection, mapper: Any, *, frozen: bool = False
) -> int:
    """Inside the caller's transaction: apply the next batch and move the tracking row.

    The log is read in its (tx, position) order below the horizon, the oldest transaction that may still
    be appending (taken first, so every event below it is committed by the time it is read): a reader
    never sees a later event before an earlier one commits (docs/write-path.md). When the batch is not
    full the tracking row moves to the horizon itself, so the next pass never scans the events of other
    types again. ``frozen``: the caller holds the log still (the rebuild's freeze lock), so no horizon."""
    await conn.execute("SELECT pg_advisory_xact_lock($1)", zlib.crc32(projection.name.encode()))
    below = None if frozen else await recorder.horizon(conn)
    row = await conn.fetchrow(
        "SELECT tx::text::bigint, position FROM projection_tracking WHERE projection = $1", projection.name
    )
    after = LogCursor(row[0], row[1]) if row else LogCursor()
    envelopes = await load_log_envelopes(
        conn, mapper, after=after, below_tx=below, limit=BATCH, event_types=sorted(projection.event_types)
    )
    for envelope in envelopes:
        await projection.apply(conn, envelope)
    if len(envelopes) == BATCH or below is None:
        if not envelopes:
            return 0
        last = envelopes[-1]
        assert last.tx is not None and last.position is not None
        scanned = LogCursor(last.tx, last.position)
    else:
        scanned = max(after, LogCursor(below, 0))
    if scanned != after:
        await track(conn, projection.name, scanned)
    return len(envelopes)


async def track(conn: asyncpg.Connection, name: str, cursor: LogCursor) -> None:
    """Record that projection ``name`` has applied the log up to ``cursor``."""
    await conn.execute(
        """INSERT INTO projection_tracking (projection, tx, position) VALUES ($1, $2::text::xid8, $3)
           ON CONFLICT (projection) DO UPDATE SET tx = EXCLUDED.tx, position = EXCLUDED.position""",
        name,
        str(cursor.tx),
        cursor.position,
    )


async def run_once(pool: asyncpg.Pool, projection: Projection, mapper: Any = None) -> int:
    """Apply one batch of the log to ``projection`` in its own transaction; returns how many were read."""
    async with pool.acquire() as conn, conn.transaction():
        return await apply_batch(conn, projection, mapper or build_mapper())


async def catch_up(
    pool: asyncpg.Pool, projections: tuple[Projection, ...] = LAGGING, *, wait: float = WAIT_SECONDS
) -> None:
    """Apply everything committed before the call (tests, the CLI). A transaction still running when it
    is called holds the horizon back (docs/write-path.md): up to ``wait`` seconds are spent waiting for
    those to end; the background runner passes 0 and comes back on the next NOTIFY or poll instead."""
    if wait > 0:
        target = await pool.fetchval("SELECT pg_snapshot_xmax(pg_current_snapshot())::text::bigint")
        deadline = asyncio.get_running_loop().time() + wait
        for _ in range(int(wait * 100)):  # polls PostgreSQL: nothing in this process could be awaited
            if await recorder.horizon(pool) >= target or asyncio.get_running_loop().time() >= deadline:
                break
            await asyncio.sleep(0.01)
    mapper = build_mapper()
    for projection in projections:
        while await run_once(pool, projection, mapper) == BATCH:
            pass


class CatchUpRunner:
    """Background task: wakes on NOTIFY ``scimledger_events`` or every ``poll_seconds``.

    The LISTEN connection is re-opened whenever it is lost (a PostgreSQL restart; issue 8, defect 8):
    while it is down the runner retries every RECONNECT_SECONDS, so notifications are fast again as soon
    as the database is back. A failing batch logs one line, not a traceback per second.
    """

    def __init__(
        self,
        pool: asyncpg.Pool,
        url: str,
        sender: Sender | None = None,
        poll_seconds: float = POLL_SECONDS,
        on_listen: Callable[[asyncpg.Connection], Awaitable[None]] | None = None,
    ) -> None:
        self.pool = pool
        self.url = url
        self.sender = sender or sender_from_env()
        self.poll_seconds = poll_seconds
        self.on_listen = on_listen  # called with each (re-)opened LISTEN connection (the token cache)
        self._delivered_floor: OutboxCursor = START
        self._wake = asyncio.Event()
        self._task: asyncio.Task[None] | None = None
        self._listener: asyncpg.Connection | None = None

    @property
    def listening(self) -> bool:
        return self._listener is not None and not self._listener.is_closed()

    async def start(self) -> None:
        await self._listen()
        self._task = asyncio.create_task(self._loop())

    async def _listen(self) -> None:
        """(Re-)open the LISTEN connection; a lost connection wakes the loop so it reconnects."""
        if self._listener is not None:
            with contextlib.suppress(Exception):
                self._listener.terminate()
            self._listener = None
        listener = await asyncpg.connect(self.url)
        await listener.add_listener("scimledger_events", lambda *_: self._wake.set())
        listener.add_termination_listener(lambda *_: self._wake.set())
        if self.on_listen is not None:
            await self.on_listen(listener)
        self._listener = listener
        self._wake.set()  # events may have been appended while nobody listened

    async def _loop(self) -> None:
        while True:
            try:
                if not self.listening:
                    await self._listen()
                    log.info("catch-up runner: LISTEN re-opened")
                await catch_up(self.pool, wait=0)
                sent = 1
                while sent:
                    sent, self._delivered_floor = await deliver_batch(
                        self.pool, self.sender, after=self._delivered_floor
                    )
            except Exception as error:  # keep running; the next wake retries the batch
                log.warning("catch-up runner: batch failed (%s: %s)", type(error).__name__, error)
            wait = self.poll_seconds if self.listening else RECONNECT_SECONDS
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self._wake.wait(), wait)
                await asyncio.sleep(SETTLE_SECONDS)
            self._wake.clear()

    async def stop(self) -> None:
        if self._task is not None:
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError):
                await self._task
        if self._listener is not None:
            await self._listener.close()
