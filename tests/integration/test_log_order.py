"""Tenants append in parallel, and readers of the whole log still never miss or repeat an event
(issue 9, "Tenants in parallel"; docs/write-path.md, "The order of the log").

Appends of different workspaces take different locks, so positions of two workspaces may commit out of
order. The log's order for readers of every workspace is (tx, position) below the horizon (the oldest
transaction that may still append): these tests hold an append open and check that no reader gets past it,
that the open append does not hold up other workspaces, and that under many concurrent appenders each
transaction's events come out contiguous and each event exactly once (eventsourcing's non-interleaving case,
across workspaces).
"""

from __future__ import annotations

import asyncio
from dataclasses import dataclass, field
from uuid import UUID, uuid4

import asyncpg
import pytest
from eventsourcing.persistence import StoredEvent

from projections import runner
from scimledger.domain import Workspace as WorkspaceAggregate
from scimledger.store import recorder
from scimledger.store.envelope import Envelope
from scimledger.store.event_store import EventStore
from scimledger.store.recorder import LogCursor
from tests.conftest import SYSTEM, make_workspace

METADATA = SYSTEM.as_dict()


@dataclass
class Recording:
    """A lagging projection that remembers what the runner handed it, in order."""

    name: str = "test_recording"
    tables: tuple[str, ...] = ()
    event_types: frozenset[str] = frozenset({"SeatAdded"})
    seen: list[Envelope] = field(default_factory=list)

    async def apply(self, conn: asyncpg.Connection, envelope: Envelope) -> None:
        self.seen.append(envelope)


async def add_seats(conn: asyncpg.Connection, store: EventStore, workspace_id: UUID, times: int = 1) -> None:
    """In the caller's transaction: ``times`` SeatAdded events on the workspace, through the store."""
    workspace = await store.load(WorkspaceAggregate, workspace_id)
    assert workspace is not None
    for _ in range(times):
        workspace.add_seats(1)
    await store.write_batch(conn, workspace_id, [([workspace], SYSTEM)])


async def seat_positions(pool: asyncpg.Pool, workspace_id: UUID) -> list[int]:
    rows = await pool.fetch(
        "SELECT position FROM events WHERE workspace_id = $1 AND event_type = 'SeatAdded' ORDER BY position",
        workspace_id,
    )
    return [r[0] for r in rows]


async def until_seen(pool: asyncpg.Pool, projection: Recording, count: int) -> None:
    """Run the runner's batches until ``count`` events were applied (other transactions on a shared server
    may hold the horizon back for a moment)."""
    for _ in range(200):
        await runner.run_once(pool, projection)
        if len(projection.seen) >= count:
            return
        await asyncio.sleep(0.05)
    raise AssertionError(f"the runner applied {len(projection.seen)} of {count} events")


async def test_an_open_append_holds_up_its_own_workspace_only(store: EventStore) -> None:
    acme = await make_workspace(store, "Acme")
    beta = await make_workspace(store, "Beta")
    async with store.pool.acquire() as open_conn, open_conn.transaction():
        await add_seats(open_conn, store, acme.id)
        # Another workspace appends and commits while Acme's append is open: it does not wait.
        async with store.pool.acquire() as conn, conn.transaction():
            await conn.execute("SET LOCAL lock_timeout = '5s'")
            await add_seats(conn, store, beta.id)
        # The same workspace waits for the open append (its lock is held until commit).
        with pytest.raises(asyncpg.LockNotAvailableError):
            async with store.pool.acquire() as conn, conn.transaction():
                await conn.execute("SET LOCAL lock_timeout = '200ms'")
                await add_seats(conn, store, acme.id)
    assert len(await seat_positions(store.pool, acme.id)) == 1
    assert len(await seat_positions(store.pool, beta.id)) == 1


async def test_a_reader_never_sees_a_later_event_before_an_earlier_one_commits(store: EventStore) -> None:
    acme = await make_workspace(store, "Acme")
    beta = await make_workspace(store, "Beta")
    projection = Recording()
    await runner.run_once(store.pool, projection)  # past the workspaces' own events
    async with store.pool.acquire() as open_conn:
        transaction = open_conn.transaction()
        await transaction.start()
        await add_seats(open_conn, store, acme.id)  # earlier: its transaction id is the smaller one
        async with store.pool.acquire() as conn, conn.transaction():
            await add_seats(conn, store, beta.id)  # later, and committed first
        for _ in range(3):
            await runner.run_once(store.pool, projection)
        assert projection.seen == []  # Beta's event waits behind Acme's open append
        await transaction.commit()
    await until_seen(store.pool, projection, 2)
    assert [e.workspace_id for e in projection.seen] == [acme.id, beta.id]
    await runner.run_once(store.pool, projection)
    assert len(projection.seen) == 2  # and never again


async def test_a_rolled_back_append_leaves_no_event_and_no_gap_in_the_workspace_sequence(
    store: EventStore,
) -> None:
    acme = await make_workspace(store, "Acme")
    async with store.pool.acquire() as conn:
        transaction = conn.transaction()
        await transaction.start()
        await add_seats(conn, store, acme.id, times=3)
        await transaction.rollback()
    async with store.pool.acquire() as conn, conn.transaction():
        await add_seats(conn, store, acme.id)
    seqs = await store.pool.fetch("SELECT seq FROM events WHERE workspace_id = $1 ORDER BY position", acme.id)
    assert [r[0] for r in seqs] == list(range(1, len(seqs) + 1))


def stack(originator: UUID, size: int) -> list[StoredEvent]:
    return [StoredEvent(originator, version, "order-test-event", b"{}") for version in range(1, size + 1)]


async def append_stack(pool: asyncpg.Pool, workspace_id: UUID, events: list[StoredEvent]) -> None:
    async with pool.acquire() as conn, conn.transaction():
        await recorder.append(conn, workspace_id, events, METADATA)


async def read_whole_log(pool: asyncpg.Pool, count: int) -> list[recorder.LoggedEvent]:
    """``count`` events of the log in its order, read as the runner does: a horizon, then batches below it
    (again while other transactions on a shared server hold the horizon back)."""
    out: list[recorder.LoggedEvent] = []
    after = LogCursor()
    for _ in range(200):
        below = await recorder.horizon(pool)
        while batch := await recorder.select_log(pool, after=after, below_tx=below, limit=300):
            out.extend(batch)
            after = LogCursor(batch[-1].tx, batch[-1].position)
        if len(out) >= count:
            return out
        await asyncio.sleep(0.05)
    return out


async def test_two_concurrent_stacks_of_different_workspaces_do_not_interleave(pool: asyncpg.Pool) -> None:
    """eventsourcing's NonInterleavingNotificationIDs case, with the two stacks in two workspaces (the
    library's own case, one workspace, runs in test_recorder_conformance.py)."""
    first, second = uuid4(), uuid4()
    await asyncio.gather(
        append_stack(pool, uuid4(), stack(first, 1000)), append_stack(pool, uuid4(), stack(second, 1000))
    )
    order = [e.stored.originator_id for e in await read_whole_log(pool, 2000)]
    assert sorted(order, key=str) == sorted([first] * 1000 + [second] * 1000, key=str)
    assert order in ([first] * 1000 + [second] * 1000, [second] * 1000 + [first] * 1000)


async def test_many_workspaces_appending_at_once_give_readers_every_event_once_and_in_order(
    store: EventStore,
) -> None:
    """20 workspaces, 4 writers each, batches of 1 to 3 events; a runner reads all the while. Every
    SeatAdded reaches the runner exactly once, each transaction's events together, each workspace's in
    commit order; every workspace's sequence is gapless and its chain verifies."""
    from scimledger import chain

    workspaces = [await make_workspace(store, f"Tenant {n}") for n in range(20)]
    projection = Recording()
    await runner.run_once(store.pool, projection)
    done = asyncio.Event()

    async def writer(workspace_id: UUID, n: int) -> None:
        for k in range(6):
            for _ in range(20):  # a writer of the same workspace may win the stream version: retry
                try:
                    workspace = await store.load(
                        WorkspaceAggregate, workspace_id
                    )  # before taking a connection
                    assert workspace is not None
                    for _ in range(1 + (n + k) % 3):
                        workspace.add_seats(1)
                    async with store.pool.acquire() as conn, conn.transaction():
                        await store.write_batch(conn, workspace_id, [([workspace], SYSTEM)])
                    break
                except recorder.VersionConflict:
                    await asyncio.sleep(0.001)
            else:
                raise AssertionError("a writer never got its append in")

    async def reader() -> None:
        while not done.is_set():
            await runner.run_once(store.pool, projection)
            await asyncio.sleep(0.005)

    reading = asyncio.create_task(reader())
    await asyncio.gather(*(writer(ws.id, n) for ws in workspaces for n in range(4)))
    done.set()
    await reading
    expected = {ws.id: await seat_positions(store.pool, ws.id) for ws in workspaces}
    total = sum(len(p) for p in expected.values())
    await until_seen(store.pool, projection, total)

    seen = [(e.workspace_id, e.position) for e in projection.seen]
    assert len(seen) == len(set(seen)) == total  # every event, none twice
    for ws in workspaces:  # each workspace's events in commit (position) order
        assert [p for w, p in seen if w == ws.id] == expected[ws.id]
    txs = [e.tx for e in projection.seen]
    runs = [tx for i, tx in enumerate(txs) if i == 0 or txs[i - 1] != tx]
    assert len(runs) == len(set(runs))  # each transaction's events contiguous
    for ws in workspaces:
        seqs = await store.pool.fetch(
            "SELECT seq FROM events WHERE workspace_id = $1 ORDER BY position", ws.id
        )
        assert [r[0] for r in seqs] == list(range(1, len(seqs) + 1))
        assert (await chain.verify_workspace(store.pool, ws.id)).ok


async def test_an_append_after_another_write_in_its_transaction_is_refused(store: EventStore) -> None:
    """The transaction id must be taken under the append locks, or tx order would not be commit order
    within a workspace: a transaction that wrote before its first append cannot append."""
    acme = await make_workspace(store, "Acme")
    async with store.pool.acquire() as conn:
        with pytest.raises(asyncpg.RaiseError, match="first write of its transaction"):
            async with conn.transaction():
                await conn.execute("INSERT INTO snapshots VALUES ($1, 1, 'x', '\\x00')", uuid4())
                await recorder.append(conn, acme.id, stack(uuid4(), 1), METADATA)
