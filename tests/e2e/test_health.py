"""``/healthz`` and ``/readyz`` (README, "Operating it"): no token; readiness checks the database, the schema
against ``schema.sql`` and the outbox's backlog, and a 503 names the failed check."""

from __future__ import annotations

import asyncio
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from projections.runner import catch_up
from scimledger import notifications, pg
from scimledger.api import health
from scimledger.app import build_store
from scimledger.config import ConfigError
from tests.conftest import Workspace, make_workspace
from tests.e2e.live_server import live_server
from tests.e2e.test_database_outage import own_server, stop_immediately  # noqa: F401 - a fixture

UNSENT = """SELECT count(*) FROM outbox o
             WHERE NOT EXISTS (SELECT 1 FROM outbox_delivery d
                                WHERE d.position = o.position AND d.kind = o.kind)"""


async def provision(client: httpx.AsyncClient, workspace: Workspace, *names: str) -> None:
    for name in names:
        response = await client.post("/scim/v2/Users", json={"userName": name}, headers=workspace.auth)
        assert response.status_code == 201, response.text


async def test_healthz_answers_ok_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/healthz")
    assert (response.status_code, response.json()) == (200, {"status": "ok"})
    assert response.headers["cache-control"] == "no-store"


async def test_readyz_is_ready_on_a_migrated_database_without_a_token(client: httpx.AsyncClient) -> None:
    response = await client.get("/readyz")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body["status"] == "ready" and "failed" not in body
    assert body["checks"] == {"database": "ok", "schema": "ok", "outbox": "ok"}
    assert body["outbox"]["unsent"] == 0


async def test_a_column_that_schema_sql_adds_but_the_database_lacks_is_503_schema(
    app: Any, client: httpx.AsyncClient
) -> None:
    await app.state.pool.execute("ALTER TABLE scim_users DROP COLUMN user_name_key")
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["status"] == "unready" and body["failed"] == ["schema"]
    assert "scim_users.user_name_key" in body["checks"]["schema"]
    assert "scimledger migrate" in body["checks"]["schema"]
    assert body["checks"]["database"] == body["checks"]["outbox"] == "ok"


async def test_a_missing_table_is_named_and_the_outbox_is_not_checked(
    app: Any, client: httpx.AsyncClient
) -> None:
    await app.state.pool.execute("DROP TABLE outbox_delivery")
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["schema"]
    assert "outbox_delivery" in body["checks"]["schema"]
    assert body["checks"]["outbox"] == "not checked"


async def test_more_unsent_notifications_than_the_limit_is_503_until_they_are_sent(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    state = app.state.readiness = health.Readiness(
        health.Limits(max_unsent=2, max_age_seconds=0), floor_slack=0
    )
    pool = app.state.pool
    await provision(client, workspace, "a@example.com", "b@example.com")  # "added" + "welcome" each
    await catch_up(pool)
    assert await pool.fetchval(UNSENT) == 4
    response = await client.get("/readyz")
    assert response.status_code == 503
    body = response.json()
    assert body["failed"] == ["outbox"] and "more than 2" in body["checks"]["outbox"]
    assert body["outbox"]["unsent"] == 3  # counted up to the limit plus one
    first_unsent = await pool.fetchval(UNSENT.replace("count(*)", "min(o.position)"))
    assert state.floor == first_unsent - 1  # where the next probe starts
    await notifications.deliver_pending(pool, notifications.LogSender(), limit=100)
    assert (await client.get("/readyz")).status_code == 200
    await provision(client, workspace, "c@example.com", "d@example.com")  # rows after the probe's floor
    await catch_up(pool)
    response = await client.get("/readyz")
    assert (response.status_code, response.json()["outbox"]["unsent"]) == (503, 3)
    first_unsent = await pool.fetchval(UNSENT.replace("count(*)", "min(o.position)"))
    assert state.floor == first_unsent - 1  # moved past the rows already sent


async def test_an_unsent_notification_older_than_the_limit_is_503(
    app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    await provision(client, workspace, "a@example.com")
    await catch_up(app.state.pool)
    age = await app.state.pool.fetchval(
        "SELECT extract(epoch FROM now() - min(created_at))::float8 FROM outbox"
    )
    limit = age + 1.0
    app.state.readiness = health.Readiness(health.Limits(max_unsent=0, max_age_seconds=limit))
    assert (await client.get("/readyz")).status_code == 200  # younger than the limit yet
    await asyncio.sleep(1.1)
    response = await client.get("/readyz")
    assert response.status_code == 503
    assert response.json()["failed"] == ["outbox"] and "waited" in response.json()["checks"]["outbox"]


def test_the_limits_come_from_the_environment(monkeypatch: pytest.MonkeyPatch) -> None:
    assert health.Limits.from_env() == health.Limits(1000, 600.0)
    monkeypatch.setenv("SCIMLEDGER_READY_MAX_OUTBOX_LAG", "50")
    monkeypatch.setenv("SCIMLEDGER_READY_MAX_OUTBOX_AGE", "0")
    assert health.Limits.from_env() == health.Limits(50, 0.0)
    monkeypatch.setenv("SCIMLEDGER_READY_MAX_OUTBOX_LAG", "-1")
    with pytest.raises(ConfigError) as refused:
        health.Limits.from_env()
    assert refused.value.setting == "SCIMLEDGER_READY_MAX_OUTBOX_LAG"


def test_every_object_schema_sql_creates_is_expected() -> None:
    expected = health.expected()
    assert {"events", "outbox", "outbox_delivery", "scim_users"} <= set(expected.relations)
    assert ("scim_users", "user_name_key") in expected.columns  # added by ALTER TABLE ... IF NOT EXISTS
    assert ("events", "hash") in expected.columns  # a column of CREATE TABLE
    assert not {c for _, c in expected.columns} & {"PRIMARY", "CONSTRAINT", "UNIQUE", "CHECK"}
    assert "scimledger_append" in expected.functions


async def test_readyz_names_the_database_while_postgresql_is_down_then_recovers(
    own_server: tuple[Path, pg.EmbeddedServer],  # noqa: F811
) -> None:
    home, server = own_server
    setup = await pg.create_pool(server.url(), min_size=1, max_size=2)
    async with setup.acquire() as conn:
        await pg.migrate(conn)
    await make_workspace(build_store(setup))
    await setup.close()
    with live_server(server.url(), run_lagging=False) as base:
        async with httpx.AsyncClient(base_url=base, timeout=10) as client:
            assert (await client.get("/readyz")).status_code == 200
            stop_immediately(server)
            started = time.monotonic()
            response = await client.get("/readyz")
            assert time.monotonic() - started < health.READY_TIMEOUT_SECONDS + 1
            assert response.status_code == 503
            body = response.json()
            assert body["failed"] == ["database"] and body["checks"]["database"].startswith("unreachable")
            assert (await client.get("/healthz")).status_code == 200  # alive all the same
            await asyncio.to_thread(pg.ensure_server, home, port=server.port)
            deadline = time.monotonic() + 20
            while (status := (await client.get("/readyz")).status_code) != 200:
                assert time.monotonic() < deadline, status
                await asyncio.sleep(0.1)
