"""The per-process SCIM token cache (issue 9, item 1): a revoked token fails on the very next request, in
every process; the cache holds secret hashes, never secrets; a re-opened LISTEN connection clears it."""

from __future__ import annotations

import asyncio
import hashlib
import pickle
from collections.abc import AsyncIterator
from typing import Any

import httpx
import pytest

from scimledger.api.token_cache import TokenCache
from scimledger.app import create_app
from scimledger.config import Settings
from tests.conftest import Workspace, make_workspace, temp_home

USERS = "/scim/v2/Users?filter=userName%20eq%20%22nobody@example.com%22"


@pytest.fixture
async def second_app(database_url: str) -> AsyncIterator[Any]:
    """Another worker on the same database, with its own token cache and its own LISTEN connection."""
    other = create_app(
        Settings(home=temp_home(), public_url="https://scim.example.test", database_url=database_url)
    )
    async with other.router.lifespan_context(other):
        yield other


def client_of(app: Any) -> httpx.AsyncClient:
    return httpx.AsyncClient(transport=httpx.ASGITransport(app=app), base_url="https://scim.example.test")


def cache_of(app: Any) -> TokenCache:
    cache: TokenCache = app.state.token_cache
    return cache


async def token_id(client: httpx.AsyncClient, ws: Workspace) -> str:
    r = await client.get("/api/v1/tokens", headers={"Authorization": f"Bearer {ws.admin_key}"})
    assert r.status_code == 200, r.text
    (token,) = r.json()["tokens"]
    return str(token["id"])


async def revoke(client: httpx.AsyncClient, ws: Workspace) -> None:
    tid = await token_id(client, ws)
    r = await client.delete(f"/api/v1/tokens/{tid}", headers={"Authorization": f"Bearer {ws.admin_key}"})
    assert r.status_code == 204, r.text


async def warm(client: httpx.AsyncClient, app: Any, ws: Workspace) -> None:
    for _ in range(3):
        assert (await client.get(USERS, headers=ws.auth)).status_code == 200
    assert cache_of(app).holds(hashlib.sha256(ws.token.encode()).digest())


async def test_a_token_revoked_through_the_admin_api_fails_on_the_very_next_request(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    await warm(client, app, workspace)
    await revoke(client, workspace)
    assert (await client.get(USERS, headers=workspace.auth)).status_code == 401


async def test_a_token_revoked_by_another_process_fails_on_this_process_s_very_next_request(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, second_app: Any
) -> None:
    await warm(client, app, workspace)
    async with client_of(second_app) as other:
        await revoke(other, workspace)
    # No wait for the notification: the first process's run_lagging=False app does not even listen.
    assert (await client.get(USERS, headers=workspace.auth)).status_code == 401


async def test_concurrent_requests_after_a_revocation_by_another_process_all_fail(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, second_app: Any
) -> None:
    await warm(client, app, workspace)
    async with client_of(second_app) as other:
        await revoke(other, workspace)
    statuses = await asyncio.gather(*(client.get(USERS, headers=workspace.auth) for _ in range(20)))
    assert {r.status_code for r in statuses} == {401}


async def test_the_revocation_notification_evicts_the_token_from_another_process_s_cache(
    app: Any, client: httpx.AsyncClient, workspace: Workspace, second_app: Any
) -> None:
    async with client_of(second_app) as other:
        await warm(other, second_app, workspace)
    await revoke(client, workspace)
    key = hashlib.sha256(workspace.token.encode()).digest()
    for _ in range(100):
        if not cache_of(second_app).holds(key):
            break
        await asyncio.sleep(0.02)
    assert not cache_of(second_app).holds(key)


async def test_the_cache_never_holds_the_secret(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    await warm(client, app, workspace)
    cache = cache_of(app)
    assert cache.keys() == [hashlib.sha256(workspace.token.encode()).digest()]
    held = pickle.dumps(cache._entries)
    assert workspace.token.encode() not in held
    assert workspace.token.split("_", 1)[1].encode() not in held


async def test_a_reopened_listen_connection_clears_the_cache(second_app: Any, pool: Any) -> None:
    ws = await make_workspace(second_app.state.store, domains=("example.com",), seats=10)
    runner = second_app.state.catch_up_runner
    cache = cache_of(second_app)
    async with client_of(second_app) as other:
        await warm(other, second_app, ws)
        old_pid = runner._listener.get_server_pid()
        await pool.execute("SELECT pg_terminate_backend($1)", old_pid)
        for _ in range(200):
            if runner.listening and runner._listener.get_server_pid() != old_pid:
                break
            await asyncio.sleep(0.02)
        assert runner._listener.get_server_pid() != old_pid
        assert cache.keys() == []
        # and the re-opened connection evicts again
        await warm(other, second_app, ws)
        await revoke(other, ws)
        for _ in range(100):
            if not cache.keys():
                break
            await asyncio.sleep(0.02)
        assert cache.keys() == []
