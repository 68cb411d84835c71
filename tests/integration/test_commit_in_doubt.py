"""A write whose connection is lost while COMMIT is in flight is in doubt, not refused (store/commit.py; a
finding of the fault suite, issue 8). A deferred trigger that sleeps holds the COMMIT open long enough for
another session to end the writer's backend at that moment, or before it."""

from __future__ import annotations

import asyncio

import asyncpg
import pytest

from scimledger.store.commit import CommitInDoubt, committed, note_committed, write_transaction

SLOW_COMMIT = """
CREATE TABLE slow_commit (n int);
CREATE FUNCTION slow_commit_wait() RETURNS trigger LANGUAGE plpgsql AS $$
BEGIN PERFORM pg_sleep(5); RETURN NULL; END $$;
CREATE CONSTRAINT TRIGGER slow_commit_wait AFTER INSERT ON slow_commit
    DEFERRABLE INITIALLY DEFERRED FOR EACH ROW EXECUTE FUNCTION slow_commit_wait();
"""


async def terminate_when(pool: asyncpg.Pool, pid: int, query_starts: str) -> None:
    """End backend ``pid`` as soon as its current statement starts with ``query_starts``."""
    for _ in range(500):
        query = await pool.fetchval("SELECT query FROM pg_stat_activity WHERE pid = $1", pid)
        if query and query.upper().startswith(query_starts):
            await pool.execute("SELECT pg_terminate_backend($1)", pid)
            return
        await asyncio.sleep(0.01)
    raise AssertionError(f"backend {pid} never ran {query_starts}")


async def test_a_connection_lost_during_commit_is_in_doubt(pool: asyncpg.Pool) -> None:
    await pool.execute(SLOW_COMMIT)
    with pytest.raises(CommitInDoubt):
        async with write_transaction(pool) as conn:
            await conn.execute("INSERT INTO slow_commit VALUES (1)")
            asyncio.get_running_loop().create_task(terminate_when(pool, conn.get_server_pid(), "COMMIT"))
    assert not committed()


async def test_a_connection_lost_before_commit_is_an_ordinary_failure(pool: asyncpg.Pool) -> None:
    with pytest.raises(asyncpg.PostgresConnectionError):
        async with write_transaction(pool) as conn:
            killer = asyncio.get_running_loop().create_task(
                terminate_when(pool, conn.get_server_pid(), "SELECT PG_SLEEP")
            )
            await conn.execute("SELECT pg_sleep(5)")
    await killer
    assert not committed()


async def test_a_commit_is_noted_for_the_request() -> None:
    """What the error handler reads when a later read fails: only a commit sets it, per task."""

    async def one_request(commits: bool) -> bool:
        if commits:
            note_committed()
        return committed()

    assert await asyncio.create_task(one_request(True))
    assert not await asyncio.create_task(one_request(False))
