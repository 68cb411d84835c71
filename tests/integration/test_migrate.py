"""``migrate`` on a current schema takes no table locks (a server or CLI command starting beside busy
servers must neither wait for them nor deadlock with them: the fault suite's two-server scenario once had
`projections rebuild --verify` deadlock with a migration's ALTER TABLE ... IF NOT EXISTS)."""

from __future__ import annotations

import asyncpg

from scimledger import pg


async def test_a_second_migration_does_not_wait_for_an_open_append(database_url: str) -> None:
    first = await asyncpg.connect(database_url)
    busy = await asyncpg.connect(database_url)
    try:
        await pg.migrate(first)  # applies (or finds) this schema.sql
        async with busy.transaction():
            await busy.execute("LOCK TABLE events, outbox, scim_users IN ROW EXCLUSIVE MODE")  # writers
            await first.execute("SET lock_timeout = '1s'")
            await pg.migrate(first)  # LockNotAvailableError if it ran any DDL
        assert await pg.applied_schema(first) is not None
    finally:
        await first.close()
        await busy.close()


async def test_a_changed_schema_is_applied_again(database_url: str) -> None:
    conn = await asyncpg.connect(database_url)
    try:
        await pg.migrate(conn)
        await conn.execute("DROP INDEX events_tx_position")
        await conn.execute("UPDATE schema_applied SET sha256 = 'an older schema.sql'")
        await pg.migrate(conn)
        assert await conn.fetchval("SELECT to_regclass('events_tx_position') IS NOT NULL")
    finally:
        await conn.close()
