"""Test fixtures: one PostgreSQL per session, a template database built from schema.sql once, and a fresh
database per test (docs/architecture.md, "PostgreSQL"). ``DATABASE_URL`` points the suite at an existing
server."""

from __future__ import annotations

import base64
import os
import shutil
import tempfile
from collections.abc import AsyncIterator, Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID, uuid4

import asyncpg
import httpx
import pytest

from scimledger import handlers, pg
from scimledger.app import build_store, create_app
from scimledger.config import Settings
from scimledger.store.event_store import EventStore, Metadata

# Personal data keys are wrapped by a master key (issue 11, src/scimledger/store/keys.py): the suite's own, so
# that no test makes one in the developer's data directory; the servers the tests start inherit it.
os.environ.setdefault("SCIMLEDGER_MASTER_KEY", base64.urlsafe_b64encode(os.urandom(32)).decode())


def temp_home() -> Path:
    """A SCIMLEDGER_HOME of one test's own: keys made on first use (the checkpoint signing key) never land
    in the developer's ``.scimledger``."""
    return Path(tempfile.mkdtemp(prefix="scimledger-home-"))


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


@pytest.fixture(scope="session")
def server_url() -> Iterator[str]:
    """A URL of the server's maintenance database (``postgres``)."""
    external = os.environ.get("DATABASE_URL")
    if external:
        yield with_database(external, "postgres")
        return
    home = Path(tempfile.mkdtemp(prefix="scimledger-test-"))
    home.chmod(0o755)
    server = pg.ensure_server(home, fsync=False)
    try:
        yield server.url("postgres")
    finally:
        pg.stop_server(server)
        shutil.rmtree(server.data_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


@pytest.fixture(scope="session")
async def template_database(server_url: str) -> AsyncIterator[str]:
    name = f"scimledger_template_{os.getpid()}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await conn.execute(f'CREATE DATABASE "{name}"')
        template = await asyncpg.connect(with_database(server_url, name))
        try:
            await template.execute(pg.schema_sql())
        finally:
            await template.close()
        yield name
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def database_url(server_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"scimledger_test_{uuid4().hex[:16]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield with_database(server_url, name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture
async def pool(database_url: str) -> AsyncIterator[asyncpg.Pool]:
    p = await pg.create_pool(database_url, min_size=1, max_size=20)
    try:
        yield p
    finally:
        await p.close()


@pytest.fixture
def store(pool: asyncpg.Pool) -> EventStore:
    return build_store(pool)


SYSTEM = Metadata(actor_kind="system", actor_id="tests", actor_name="tests", source="system")


@pytest.fixture
async def app(database_url: str) -> AsyncIterator[Any]:
    application = create_app(
        Settings(
            home=temp_home(),
            public_url="https://scim.example.test",
            database_url=database_url,
        ),
        run_lagging=False,
    )
    async with application.router.lifespan_context(application):
        yield application


class Workspace:
    """A workspace made for one test, with a read-write SCIM token and its admin key."""

    def __init__(self, workspace_id: UUID, token: str, admin_key: str) -> None:
        self.id = workspace_id
        self.token = token
        self.admin_key = admin_key

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


async def make_workspace(store: EventStore, name: str = "Acme", **kwargs: Any) -> Workspace:
    created = await handlers.create_workspace(store, handlers.CreateWorkspace(name=name, **kwargs), SYSTEM)
    token = await handlers.issue_token(
        store, handlers.IssueToken(workspace_id=created.workspace_id, name="IdP token"), SYSTEM
    )
    return Workspace(created.workspace_id, token.token, created.admin_key)


@pytest.fixture
async def workspace(app: Any) -> Workspace:
    return await make_workspace(app.state.store, domains=("example.com",), seats=100)


@pytest.fixture
async def client(app: Any) -> AsyncIterator[httpx.AsyncClient]:
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="https://scim.example.test") as c:
        yield c
