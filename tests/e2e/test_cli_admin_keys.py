"""``scimledger admin-key create|revoke|list`` (issue 10; README "CLI"): another admin key works at once on
the admin API, a revoked one fails on the next request, the last active key cannot be revoked (nothing is
appended), and two revocations racing for the last two keys leave one."""

from __future__ import annotations

import asyncio
import json
import uuid

import asyncpg
import httpx
import pytest

from scimledger.handlers import admin_keys
from scimledger.store.event_store import EventStore
from tests.conftest import SYSTEM, Workspace, make_workspace
from tests.e2e.cli_processes import isolated_env, open_dir, run, run_json


@pytest.fixture
def env(database_url: str) -> dict[str, str]:
    return isolated_env(DATABASE_URL=database_url, SCIMLEDGER_HOME=str(open_dir("scimledger-keys-")))


async def status_with(client: httpx.AsyncClient, key: str) -> int:
    answer = await client.get("/api/v1/workspace", headers={"Authorization": f"Bearer {key}"})
    return answer.status_code


async def test_another_key_works_and_a_revoked_one_stops_working(
    env: dict[str, str], client: httpx.AsyncClient, workspace: Workspace
) -> None:
    ws = str(workspace.id)
    issued = await asyncio.to_thread(run_json, env, "admin-key", "create", "--workspace", ws)
    assert set(issued) == {"workspace_id", "admin_key_id", "admin_key"} and issued["workspace_id"] == ws
    assert await status_with(client, issued["admin_key"]) == 200

    listed = (await asyncio.to_thread(run_json, env, "admin-key", "list", "--workspace", ws))["admin_keys"]
    shown = {"id", "status", "created_at", "created_by", "revoked_at", "revoked_by"}  # never a secret or hash
    assert [set(k) for k in listed] == [shown] * 2
    assert [k["status"] for k in listed] == ["active", "active"]
    [first] = [k["id"] for k in listed if k["id"] != issued["admin_key_id"]]

    revoked = await asyncio.to_thread(run_json, env, "admin-key", "revoke", "--workspace", ws, "--key", first)
    assert revoked == {"workspace_id": ws, "admin_key_id": first, "revoked": True}
    assert await status_with(client, workspace.admin_key) == 401
    assert await status_with(client, issued["admin_key"]) == 200
    after = (await asyncio.to_thread(run_json, env, "admin-key", "list", "--workspace", ws))["admin_keys"]
    assert {k["id"]: k["status"] for k in after} == {first: "revoked", issued["admin_key_id"]: "active"}


async def test_the_last_key_cannot_be_revoked_and_nothing_is_appended(
    env: dict[str, str], client: httpx.AsyncClient, workspace: Workspace, pool: asyncpg.Pool
) -> None:
    ws = str(workspace.id)
    [only] = (await asyncio.to_thread(run_json, env, "admin-key", "list", "--workspace", ws))["admin_keys"]
    events = await pool.fetchval("SELECT count(*) FROM events")
    done = await asyncio.to_thread(run, env, "admin-key", "revoke", "--workspace", ws, "--key", only["id"])
    assert done.returncode == 2 and done.stdout == ""
    [line] = done.stderr.splitlines()
    assert "last active admin key" in line
    assert await pool.fetchval("SELECT count(*) FROM events") == events
    assert await status_with(client, workspace.admin_key) == 200


async def test_keys_of_another_or_no_workspace_are_not_found(
    env: dict[str, str], workspace: Workspace
) -> None:
    nowhere = str(uuid.uuid4())
    done = await asyncio.to_thread(run, env, "admin-key", "create", "--workspace", nowhere)
    assert done.returncode == 2 and f"workspace {nowhere} does not exist" in done.stderr
    [key] = json.loads(
        (await asyncio.to_thread(run, env, "admin-key", "list", "--workspace", str(workspace.id))).stdout
    )["admin_keys"]
    done = await asyncio.to_thread(
        run, env, "admin-key", "revoke", "--workspace", nowhere, "--key", key["id"]
    )
    assert done.returncode == 2 and "not found" in done.stderr


async def test_two_revocations_racing_for_the_last_two_keys_leave_one(store: EventStore) -> None:
    for _ in range(5):
        made = await make_workspace(store)
        [first] = await admin_keys.list_admin_keys(store.pool, made.id)
        second = await admin_keys.issue_admin_key(store, admin_keys.IssueAdminKey(made.id), SYSTEM)
        outcomes = await asyncio.gather(
            *(
                admin_keys.revoke_admin_key(store, admin_keys.RevokeAdminKey(made.id, key), SYSTEM)
                for key in (first.id, second.key_id)
            ),
            return_exceptions=True,
        )
        assert sorted(type(o).__name__ for o in outcomes) == ["LastAdminKey", "NoneType"]
        keys = await admin_keys.list_admin_keys(store.pool, made.id)
        assert sum(k.revoked_at is None for k in keys) == 1
