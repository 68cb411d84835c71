"""``scimledger replay`` (issue 7, "Replay"): one workspace's read model as of a time, rebuilt by the live
projections into its own schema that an auditor queries with plain SQL.

History is made through the real app (SCIM and the admin API) on real PostgreSQL; the replay runs through
``scimledger.audit.replay.replay`` or a real ``scimledger replay`` process, and its schema is read with SQL.
"""

from __future__ import annotations

import asyncio
import json
import os
import subprocess
from datetime import datetime
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from scimledger import pg
from scimledger.audit.replay import PROJECTIONS, ReplayError, replay
from tests.conftest import Workspace, make_workspace
from tests.e2e.conftest import CLI
from tests.e2e.rules_helpers import (
    admin_auth,
    create_app_member,
    group_body,
    patch_body,
    provisioned,
    set_active,
)

REPLAYED = [t for p in PROJECTIONS for t in p.tables]


async def last_recorded_at(pool: asyncpg.Pool, ws: Workspace) -> datetime:
    """The time of the workspace's latest append: a replay until then includes it, and nothing later."""
    at: datetime = await pool.fetchval("SELECT max(recorded_at) FROM events WHERE workspace_id = $1", ws.id)
    return at


async def table_rows(
    pool: asyncpg.Pool, schema: str, table: str, workspace_id: UUID | None = None
) -> list[str]:
    """Every row of ``schema.table`` as jsonb text (column order does not matter), optionally only those of
    one workspace, in a total order."""
    column = "id" if table == "workspaces" else "workspace_id"
    where = f"WHERE t.{column} = $1" if workspace_id else "WHERE $1::uuid IS NULL"
    rows = await pool.fetch(
        f"SELECT to_jsonb(t)::text AS r FROM {schema}.{table} t {where} ORDER BY 1", workspace_id
    )
    return [r["r"] for r in rows]


async def users(pool: asyncpg.Pool, schema: str) -> dict[str, str]:
    rows = await pool.fetch(f"SELECT user_name, status FROM {schema}.scim_users")
    return {r["user_name"]: r["status"] for r in rows}


async def schema_exists(pool: asyncpg.Pool, schema: str) -> bool:
    return bool(await pool.fetchval("SELECT EXISTS (SELECT FROM pg_namespace WHERE nspname = $1)", schema))


async def push_team(client: httpx.AsyncClient, ws: Workspace, name: str, *member_ids: str) -> str:
    response = await client.post("/scim/v2/Groups", json=group_body(name, *member_ids), headers=ws.auth)
    assert response.status_code == 201, response.text
    return str(response.json()["id"])


async def rich_history(client: httpx.AsyncClient, ws: Workspace) -> None:
    """Members (active, invited, suspended, linked), a team with a member removed, drift, a revoked token."""
    ada = await provisioned(client, ws, "ada@example.com", roles=["admin"])
    bob = await provisioned(client, ws, "bob@example.com")
    carol = await provisioned(client, ws, "carol@example.com")
    await provisioned(client, ws, "eve@other.org")  # unverified domain: invited
    team = await push_team(client, ws, "Engineering", ada, bob, carol)
    removal = patch_body({"op": "remove", "path": f'members[value eq "{bob}"]'})
    assert (await client.patch(f"/scim/v2/Groups/{team}", json=removal, headers=ws.auth)).status_code == 200
    assert (await set_active(client, ws, bob, False)).status_code == 200
    drift = await client.patch(f"/api/v1/members/{carol}", json={"role": "admin"}, headers=admin_auth(ws))
    assert drift.status_code == 200, drift.text
    await create_app_member(client, ws, "dan@example.com")
    await provisioned(client, ws, "dan@example.com")  # the IdP links the app-managed member
    token = await client.post("/api/v1/tokens", json={"name": "old"}, headers=admin_auth(ws))
    assert token.status_code == 201, token.text
    revoked = await client.delete(f"/api/v1/tokens/{token.json()['id']}", headers=admin_auth(ws))
    assert revoked.status_code in (200, 204), revoked.text


async def test_replay_until_a_time_gives_the_state_at_that_time(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    bob = await provisioned(client, workspace, "bob@example.com")
    then = await last_recorded_at(pool, workspace)
    assert (await set_active(client, workspace, bob, False)).status_code == 200
    await provisioned(client, workspace, "carol@example.com")

    summary = await replay(database_url, workspace.id, until=then, schema="audit_then")

    assert await users(pool, "audit_then") == {"ada@example.com": "active", "bob@example.com": "active"}
    assert await users(pool, "public") == {
        "ada@example.com": "active",
        "bob@example.com": "suspended",
        "carol@example.com": "active",
    }
    assert summary.tables["scim_users"] == 2
    assert summary.position == await pool.fetchval(
        "SELECT max(position) FROM events WHERE workspace_id = $1 AND recorded_at <= $2", workspace.id, then
    )


async def test_replay_to_the_head_equals_the_live_rows_of_the_workspace(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await rich_history(client, workspace)

    await replay(database_url, workspace.id, until=None, schema="audit_head")

    for table in REPLAYED:
        live = await table_rows(pool, "public", table, workspace.id)
        assert await table_rows(pool, "audit_head", table) == live, table
    assert await pool.fetchval("SELECT count(*) FROM audit_head.drift") == 1
    assert await pool.fetchval("SELECT count(*) FROM audit_head.scim_group_members") == 2


async def test_projections_read_the_replay_s_tables_not_the_live_ones(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    """The drift projection looks up who manages a member: in the replay schema, whatever the live table
    says."""
    pool: asyncpg.Pool = app.state.pool
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    bob = await provisioned(client, workspace, "bob@example.com")
    drift = await client.patch(
        f"/api/v1/members/{bob}", json={"role": "admin"}, headers=admin_auth(workspace)
    )
    assert drift.status_code == 200, drift.text
    await pool.execute("UPDATE scim_users SET managed_by = 'app'")  # the live read model now disagrees

    await replay(database_url, workspace.id, until=None, schema="audit_own")

    assert (
        await pool.fetchval("SELECT managed_by FROM audit_own.scim_users WHERE id = $1", UUID(bob)) == "idp"
    )
    assert await pool.fetchval("SELECT count(*) FROM audit_own.drift WHERE resource_id = $1", UUID(bob)) == 1


async def test_other_workspaces_rows_are_absent(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    other = await make_workspace(app.state.store, name="Other", domains=("other.test",), seats=10)
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    await provisioned(client, other, "zed@other.test", roles=["admin"])
    await push_team(client, other, "Other team")

    await replay(database_url, workspace.id, until=None, schema="audit_one")

    for table in REPLAYED:
        column = "id" if table == "workspaces" else "workspace_id"
        found = await pool.fetch(f"SELECT DISTINCT {column} AS ws FROM audit_one.{table}")
        assert {r["ws"] for r in found} <= {workspace.id}, table
    assert await users(pool, "audit_one") == {"ada@example.com": "active"}
    assert await pool.fetchval("SELECT count(*) FROM audit_one.tokens") == 1


async def test_events_are_read_in_keyset_batches_with_progress(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    for n in range(4):
        await provisioned(client, workspace, f"u{n}@example.com")
    calls: list[tuple[int, int]] = []

    summary = await replay(
        database_url,
        workspace.id,
        until=None,
        schema="audit_batches",
        progress=lambda done, total: calls.append((done, total)),
        batch=3,
    )

    total = summary.applied
    assert total > 6
    assert calls[0] == (0, total) and calls[-1] == (total, total)
    assert [done for done, _ in calls] == sorted({done for done, _ in calls})  # strictly increasing
    assert len(calls) == 1 + -(-total // 3)
    for table in REPLAYED:
        live = await table_rows(pool, "public", table, workspace.id)
        assert await table_rows(pool, "audit_batches", table) == live, table


async def test_an_existing_schema_is_refused_without_replace(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    then = await last_recorded_at(pool, workspace)
    await replay(database_url, workspace.id, until=then, schema="audit_x")
    await provisioned(client, workspace, "bob@example.com")

    with pytest.raises(ReplayError, match="already exists: add --replace"):
        await replay(database_url, workspace.id, until=None, schema="audit_x")

    assert await users(pool, "audit_x") == {"ada@example.com": "active"}


async def test_replace_drops_and_rebuilds_an_earlier_replay(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    then = await last_recorded_at(pool, workspace)
    await replay(database_url, workspace.id, until=then, schema="audit_x")
    await pool.execute("CREATE TABLE audit_x.notes (note text)")  # an auditor's own table goes with it
    await provisioned(client, workspace, "bob@example.com")

    await replay(database_url, workspace.id, until=None, schema="audit_x", replace=True)

    assert await users(pool, "audit_x") == {"ada@example.com": "active", "bob@example.com": "active"}
    assert await pool.fetchval("SELECT to_regclass('audit_x.notes')") is None


async def test_replace_never_drops_a_schema_it_did_not_make(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await pool.execute("CREATE SCHEMA billing; CREATE TABLE billing.invoices (id int)")

    with pytest.raises(ReplayError, match="not made by scimledger replay"):
        await replay(database_url, workspace.id, until=None, schema="billing", replace=True)

    assert await pool.fetchval("SELECT to_regclass('billing.invoices')") is not None


@pytest.mark.parametrize(
    "name",
    ["public", "information_schema", "pg_audit", "Audit", "audit-2026", "2026_audit", "a" * 64, "", "select"],
)
async def test_bad_schema_names_are_refused(
    workspace: Workspace, app: Any, database_url: str, name: str
) -> None:
    before = await app.state.pool.fetchval("SELECT count(*) FROM pg_namespace")

    with pytest.raises(ReplayError, match="schema name"):
        await replay(database_url, workspace.id, until=None, schema=name)

    assert await app.state.pool.fetchval("SELECT count(*) FROM pg_namespace") == before


async def test_a_failed_replay_leaves_nothing_behind(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])

    def fail_midway(done: int, total: int) -> None:
        if done:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError, match="interrupted"):
        await replay(database_url, workspace.id, until=None, schema="audit_f", progress=fail_midway, batch=2)

    assert not await schema_exists(app.state.pool, "audit_f")


async def test_a_failed_replace_keeps_the_earlier_replay(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    await replay(database_url, workspace.id, until=None, schema="audit_k")
    await provisioned(client, workspace, "bob@example.com")

    def fail_midway(done: int, total: int) -> None:
        if done:
            raise RuntimeError("interrupted")

    with pytest.raises(RuntimeError):
        await replay(
            database_url, workspace.id, until=None, schema="audit_k", replace=True, progress=fail_midway
        )

    assert await users(pool, "audit_k") == {"ada@example.com": "active"}


async def test_a_workspace_not_in_the_log_or_not_yet_created_is_refused(
    workspace: Workspace, app: Any, database_url: str
) -> None:
    with pytest.raises(ReplayError, match="no workspace"):
        await replay(database_url, uuid4(), until=None, schema="audit_none")
    with pytest.raises(ReplayError, match="no events at or before"):
        await replay(
            database_url, workspace.id, until=datetime.fromisoformat("2000-01-01T00:00:00Z"), schema="a"
        )
    assert not await schema_exists(app.state.pool, "audit_none")


async def test_a_role_that_may_not_create_schemas_is_told_to_use_the_owner(
    workspace: Workspace, app: Any, database_url: str
) -> None:
    """The server's least-privilege role (schema.sql, section 6) reads the log but creates nothing."""
    parts = urlsplit(database_url)
    host = parts.netloc.rpartition("@")[2]
    server_role = urlunsplit((parts.scheme, f"{pg.APP_ROLE}@{host}", parts.path, parts.query, ""))

    with pytest.raises(ReplayError, match="run it as the owner"):
        await replay(server_role, workspace.id, until=None, schema="audit_denied")

    assert not await schema_exists(app.state.pool, "audit_denied")


def cli_env(database_url: str) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "SCIMLEDGER_MIGRATE_URL"}
    env["DATABASE_URL"] = database_url
    return env


async def test_the_cli_replays_into_a_schema_an_auditor_queries_with_sql(
    client: httpx.AsyncClient, workspace: Workspace, app: Any, database_url: str
) -> None:
    pool: asyncpg.Pool = app.state.pool
    await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    bob = await provisioned(client, workspace, "bob@example.com")
    then = (await last_recorded_at(pool, workspace)).isoformat()
    assert (await set_active(client, workspace, bob, False)).status_code == 200

    args = ["replay", "--workspace", str(workspace.id), "--until", then, "--into", "audit_2026_03"]
    done = await asyncio.to_thread(
        subprocess.run, [*CLI, *args], env=cli_env(database_url), capture_output=True, text=True, timeout=120
    )

    assert done.returncode == 0, done.stderr
    assert done.stderr == ""  # not a terminal: no progress bar
    summary = json.loads(done.stdout)
    assert summary["schema"] == "audit_2026_03" and summary["workspace"] == str(workspace.id)
    assert summary["tables"]["scim_users"] == 2 and summary["events"] > 0
    auditor = await asyncpg.connect(database_url)  # a plain connection: no codecs, plain SQL
    try:
        rows = await auditor.fetch(
            "SELECT user_name, active FROM audit_2026_03.scim_users ORDER BY user_name"
        )
    finally:
        await auditor.close()
    assert [tuple(r) for r in rows] == [("ada@example.com", True), ("bob@example.com", True)]


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (["--into", "Audit"], "must be a plain lower-case SQL identifier"),
        (["--into", "audit_a", "--until", "2026-03-01T00:00:00"], "has no time zone"),
        (["--into", "audit_a", "--workspace", "nope"], "is not a workspace id"),
    ],
    ids=["schema", "until", "workspace"],
)
def test_the_cli_refuses_bad_input_with_one_line_and_exit_2(
    database_url: str, args: list[str], message: str
) -> None:
    workspace = [] if "--workspace" in args else ["--workspace", str(uuid4())]
    done = subprocess.run(
        [*CLI, "replay", *workspace, *args],
        env=cli_env(database_url),
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert done.returncode == 2
    assert done.stdout == ""
    assert len(done.stderr.splitlines()) == 1 and message in done.stderr
