"""Projections: a rebuild from position 0 equals the live read model; the outbox is exactly-once."""

from __future__ import annotations

from typing import Any

import asyncpg
import httpx
import pytest

from projections import runner
from projections.rebuild import RebuildMismatch, rebuild, table_digest
from tests.conftest import Workspace


async def provision(client: httpx.AsyncClient, workspace: Workspace, *names: str) -> list[dict[str, Any]]:
    out = []
    for name in names:
        response = await client.post(
            "/scim/v2/Users",
            json={"userName": name, "name": {"givenName": name.split("@")[0]}, "emails": [{"value": name}]},
            headers=workspace.auth,
        )
        assert response.status_code == 201, response.text
        out.append(response.json())
    return out


async def test_rebuild_equals_the_live_read_model(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provision(client, workspace, "a@example.com", "b@example.com", "c@other.org")
    pool: asyncpg.Pool = app.state.pool
    async with pool.acquire() as conn:
        before = await table_digest(conn, "scim_users")
    digests = await rebuild(pool, verify=True)
    assert digests and all(d.equal for d in digests)
    assert {d.table for d in digests} >= {"scim_users", "tokens", "workspaces", "outbox"}
    async with pool.acquire() as conn:
        assert await table_digest(conn, "scim_users") == before
        assert await conn.fetchval("SELECT count(*) FROM scim_users") == 3


async def test_rebuild_verify_reports_a_tampered_read_model(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provision(client, workspace, "d@example.com")
    pool: asyncpg.Pool = app.state.pool
    await pool.execute("UPDATE scim_users SET display_name = 'tampered'")
    with pytest.raises(RebuildMismatch) as raised:
        await rebuild(pool, verify=True)
    assert [d.table for d in raised.value.digests if not d.equal] == ["scim_users"]
    assert await pool.fetchval("SELECT display_name FROM scim_users") == "tampered"  # rolled back


async def test_outbox_queues_each_notification_exactly_once(
    client: httpx.AsyncClient, workspace: Workspace, app: Any
) -> None:
    await provision(client, workspace, "e@example.com", "f@example.com")
    pool: asyncpg.Pool = app.state.pool
    await runner.catch_up(pool)
    await runner.catch_up(pool)
    rows = await pool.fetch("SELECT kind, recipient FROM outbox ORDER BY position, kind")
    assert [(r["kind"], r["recipient"]) for r in rows] == [
        ("added", "e@example.com"),
        ("welcome", "e@example.com"),
        ("added", "f@example.com"),
        ("welcome", "f@example.com"),
    ]
    behind = """SELECT count(*) FROM events e, projection_tracking t
                 WHERE t.projection = 'outbox' AND (e.tx, e.position) > (t.tx, t.position)"""
    assert await pool.fetchval(behind) == 0  # the tracking cursor is past every event of the log


async def test_runner_wakes_on_notify(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    import asyncio

    pool: asyncpg.Pool = app.state.pool
    live = runner.CatchUpRunner(pool, database_url)
    await live.start()
    try:
        await runner.catch_up(pool)
        await provision(client, workspace, "g@example.com")
        for _ in range(100):
            if await pool.fetchval("SELECT count(*) FROM outbox WHERE recipient = 'g@example.com'"):
                break
            await asyncio.sleep(0.02)
        assert await pool.fetchval("SELECT count(*) FROM outbox WHERE recipient = 'g@example.com'") == 2
    finally:
        await live.stop()
