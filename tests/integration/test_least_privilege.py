"""Least privilege (schema.sql, section 7): the server's role may SELECT and INSERT the log and nothing more,
even when the append-only triggers are gone; migrations belong to the owner."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import asyncpg
import httpx
import pytest

from scimledger import pg
from scimledger.app import create_app
from scimledger.config import Settings
from tests.conftest import make_workspace, temp_home

USER = {"schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"], "userName": "ada@example.com"}


def as_app_role(url: str) -> str:
    parts = urlsplit(url)
    host = parts.netloc.rpartition("@")[2]
    return urlunsplit((parts.scheme, f"{pg.APP_ROLE}@{host}", parts.path, parts.query, parts.fragment))


@pytest.fixture
async def app_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(as_app_role(database_url))
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def owner_conn(database_url: str) -> AsyncIterator[asyncpg.Connection]:
    conn = await asyncpg.connect(database_url)
    try:
        yield conn
    finally:
        await conn.close()


@pytest.fixture
async def least_privilege_app(database_url: str) -> AsyncIterator[Any]:
    """The real app connected as the server's role, on a log that already has a workspace and a user."""
    application = create_app(
        Settings(
            home=temp_home(),
            public_url=None,
            database_url=as_app_role(database_url),
        ),
        run_lagging=False,
    )
    async with application.router.lifespan_context(application):
        yield application


async def test_the_server_role_writes_and_reads_through_the_app(least_privilege_app: Any) -> None:
    ws = await make_workspace(least_privilege_app.state.store, domains=("example.com",), seats=5)
    transport = httpx.ASGITransport(app=least_privilege_app)
    async with httpx.AsyncClient(transport=transport, base_url="https://t") as client:
        created = await client.post("/scim/v2/Users", json=USER, headers=ws.auth)
        assert created.status_code == 201, created.text
        found = await client.get(f"/scim/v2/Users/{created.json()['id']}", headers=ws.auth)
        assert found.status_code == 200
    assert await least_privilege_app.state.pool.fetchval("SELECT current_user") == pg.APP_ROLE


async def test_the_server_role_does_not_migrate(least_privilege_app: Any) -> None:
    async with least_privilege_app.state.pool.acquire() as conn:
        assert not await pg.owns_schema(conn)


@pytest.mark.parametrize(
    "statement",
    [
        "UPDATE events SET event_type = 'Forged'",
        "DELETE FROM events",
        "TRUNCATE events",
    ],
)
async def test_the_server_role_cannot_change_the_log_even_without_triggers(
    owner_conn: asyncpg.Connection, app_conn: asyncpg.Connection, statement: str
) -> None:
    await owner_conn.execute(
        "SELECT scimledger_append($1, $2, $3, $4, $5, $6::jsonb[], $7::jsonb[])",
        *_one_event(),
    )
    for trigger in ("events_no_update", "events_no_delete", "events_no_truncate"):
        await owner_conn.execute(f"DROP TRIGGER {trigger} ON events")
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute(statement)
    assert await owner_conn.fetchval("SELECT count(*) FROM events WHERE event_type = 'Probe'") == 1


async def test_the_server_role_cannot_drop_the_triggers(app_conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute("DROP TRIGGER events_no_update ON events")


async def test_the_server_role_cannot_replace_the_append_function(app_conn: asyncpg.Connection) -> None:
    with pytest.raises(asyncpg.InsufficientPrivilegeError):
        await app_conn.execute(pg.schema_sql())


async def test_the_server_role_can_append_and_read(app_conn: asyncpg.Connection) -> None:
    positions = await app_conn.fetchval(
        "SELECT scimledger_append($1, $2, $3, $4, $5, $6::jsonb[], $7::jsonb[])", *_one_event()
    )
    assert len(positions) == 1
    assert await app_conn.fetchval("SELECT count(*) FROM events") == 1


def _one_event() -> tuple[Any, ...]:
    from uuid import uuid4

    stream = uuid4()
    return (
        uuid4(),
        [stream],
        [1],
        ["Probe"],
        [b'{"x":1}'],
        ['{"x":1}'],
        ['{"actor": {"id": "t", "kind": "system", "name": "t"}, "source": "system"}'],
    )


async def test_an_empty_database_is_migrated_by_its_owner(server_url: str) -> None:
    """A fresh DATABASE_URL database: no log yet, so the connecting role may create it."""
    from uuid import uuid4

    from tests.conftest import with_database

    name = f"scimledger_empty_{uuid4().hex[:12]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}"')
        conn = await asyncpg.connect(with_database(server_url, name))
        try:
            assert await pg.owns_schema(conn)
            await pg.migrate_if_owner(conn)
            assert await conn.fetchval("SELECT to_regclass('events') IS NOT NULL")
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()
