"""The log on real PostgreSQL: append-only, commit-ordered, hash-chained, optimistic concurrency."""

from __future__ import annotations

import asyncio
from uuid import UUID, uuid4

import asyncpg
import pytest
from eventsourcing.persistence import StoredEvent

from scimledger import chain
from scimledger.store import recorder
from scimledger.store.recorder import VersionConflict

META = {"actor": {"kind": "system", "id": "t", "name": "t"}, "source": "system"}


def events_for(stream: UUID, start: int, count: int) -> list[StoredEvent]:
    return [StoredEvent(stream, v, "TestHappened", b'{"n":%d}' % v) for v in range(start, start + count)]


async def append(pool: asyncpg.Pool, workspace: UUID, events: list[StoredEvent]) -> list[int]:
    async with pool.acquire() as conn, conn.transaction():
        return await recorder.append(conn, workspace, events, META)


@pytest.mark.parametrize(
    "statement",
    ["UPDATE events SET event_type = 'Forged'", "DELETE FROM events", "TRUNCATE events"],
)
async def test_the_log_refuses_update_delete_and_truncate(pool: asyncpg.Pool, statement: str) -> None:
    await append(pool, uuid4(), events_for(uuid4(), 1, 2))
    with pytest.raises(asyncpg.InsufficientPrivilegeError, match="append-only"):
        await pool.execute(statement)
    assert await pool.fetchval("SELECT count(*) FROM events") == 2


async def test_an_existing_version_is_a_conflict_and_appends_nothing(pool: asyncpg.Pool) -> None:
    stream, workspace = uuid4(), uuid4()
    await append(pool, workspace, events_for(stream, 1, 1))
    with pytest.raises(VersionConflict) as raised:
        await append(pool, workspace, [*events_for(uuid4(), 1, 1), *events_for(stream, 1, 1)])
    assert raised.value.stream_id == stream
    assert await pool.fetchval("SELECT count(*) FROM events") == 1


async def test_positions_are_gapless_and_the_json_view_matches_the_bytes(pool: asyncpg.Pool) -> None:
    positions = await append(pool, uuid4(), events_for(uuid4(), 1, 3))
    assert positions == [1, 2, 3]
    rows = await pool.fetch("SELECT state, data FROM events ORDER BY position")
    assert [r["data"]["n"] for r in rows] == [1, 2, 3]


async def test_two_concurrent_appends_of_1000_events_never_interleave(pool: asyncpg.Pool) -> None:
    workspace = uuid4()
    a, b = uuid4(), uuid4()
    await asyncio.gather(
        append(pool, workspace, events_for(a, 1, 1000)), append(pool, workspace, events_for(b, 1, 1000))
    )
    streams = [r[0] for r in await pool.fetch("SELECT stream_id FROM events ORDER BY position")]
    assert len(streams) == 2000
    first = streams[0]
    assert streams[:1000] == [first] * 1000
    assert set(streams[1000:]) == {b if first == a else a}


async def test_position_order_is_commit_order_under_concurrency(pool: asyncpg.Pool) -> None:
    """Many concurrent single-event appends: positions are gapless and recorded_at never goes back."""
    workspace = uuid4()
    await asyncio.gather(*(append(pool, workspace, events_for(uuid4(), 1, 1)) for _ in range(200)))
    rows = await pool.fetch("SELECT position, recorded_at FROM events ORDER BY position")
    assert [r["position"] for r in rows] == list(range(1, 201))
    times = [r["recorded_at"] for r in rows]
    assert times == sorted(times)


async def test_the_hash_chain_verifies_per_workspace(pool: asyncpg.Pool) -> None:
    w1, w2 = uuid4(), uuid4()
    await append(pool, w1, events_for(uuid4(), 1, 3))
    await append(pool, w2, events_for(uuid4(), 1, 2))
    await append(pool, w1, events_for(uuid4(), 1, 1))
    reports = {r.workspace_id: r for r in await chain.verify_all(pool)}
    assert reports[w1].ok and reports[w1].events == 4
    assert reports[w2].ok and reports[w2].events == 2
    first_of_w2 = await pool.fetchval(
        "SELECT prev_hash FROM events WHERE workspace_id = $1 ORDER BY position LIMIT 1", w2
    )
    assert first_of_w2 == chain.GENESIS


async def test_an_altered_event_breaks_the_chain(pool: asyncpg.Pool) -> None:
    workspace = uuid4()
    await append(pool, workspace, events_for(uuid4(), 1, 3))
    async with pool.acquire() as conn, conn.transaction():
        # Only a superuser bypassing the triggers can do this; the chain still tells.
        await conn.execute("SET LOCAL session_replication_role = replica")
        await conn.execute("UPDATE events SET state = '{\"n\":99}' WHERE position = 2")
    report = await chain.verify_workspace(pool, workspace)
    assert report.broken_at == 2
