"""``projections.rebuild``: the log is replayed into temporary tables that shadow the live ones for the
rebuilding connection only, then compared; the connection names the live tables again afterwards."""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any
from uuid import uuid4

import asyncpg
import httpx

from projections import workspaces
from projections.base import Envelope
from projections.rebuild import rebuild
from scimledger import pg
from tests.conftest import Workspace


async def provision(client: httpx.AsyncClient, workspace: Workspace, *names: str) -> None:
    for name in names:
        response = await client.post("/scim/v2/Users", json={"userName": name}, headers=workspace.auth)
        assert response.status_code == 201, response.text


async def test_rebuild_without_verify_replaces_a_tampered_read_model(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provision(client, workspace, "a@example.com", "b@example.com")
    pool: asyncpg.Pool = app.state.pool
    await pool.execute("UPDATE scim_users SET display_name = 'tampered'")
    digests = await rebuild(pool, verify=False)
    assert [d.table for d in digests if not d.equal] == ["scim_users"]
    assert await pool.fetchval("SELECT count(*) FROM scim_users WHERE display_name = 'tampered'") == 0
    assert await pool.fetchval("SELECT count(*) FROM scim_users") == 2
    assert all(d.equal for d in await rebuild(pool, verify=True))


async def test_statements_prepared_before_a_rebuild_follow_the_tables_it_uses(
    client: httpx.AsyncClient, workspace: Workspace, database_url: str
) -> None:
    """The rebuilding connection may have projection statements prepared (and cached) before: during the
    rebuild they must write the temporary tables, afterwards the live ones again."""
    await provision(client, workspace, "c@example.com")  # the log holds SeatAssigned events
    single = await pg.create_pool(database_url, min_size=1, max_size=1)  # the rebuild's own connection
    try:
        unknown = Envelope(uuid4(), "SeatAssigned", SimpleNamespace(originator_version=1))
        for _ in range(2):  # the second time, this connection has had temporary tables before
            async with single.acquire() as conn:  # always the same connection: the pool holds one
                await workspaces.apply(conn, unknown)  # changes nothing; the statement is now prepared
                before = await conn.fetchval("SELECT seats_assigned FROM workspaces")
            assert all(d.equal for d in await rebuild(single, verify=True))  # replayed into the temp table
        mine = Envelope(workspace.id, "SeatAssigned", SimpleNamespace(originator_version=9))
        async with single.acquire() as conn:
            await workspaces.apply(conn, mine)
            assert await conn.fetchval("SELECT count(*) FROM pg_tables WHERE schemaname LIKE 'pg_temp%'") == 0
    finally:
        await single.close()
    other = await asyncpg.connect(database_url)
    try:
        assert await other.fetchval("SELECT seats_assigned FROM workspaces") == before + 1
    finally:
        await other.close()
