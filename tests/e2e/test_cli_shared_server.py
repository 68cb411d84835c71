"""One embedded PostgreSQL shared by two ``scimledger serve`` processes (issue 10, defect 4; README "CLI"): it
outlives every process that uses it and stops after the last one, however that one ends."""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import signal
from collections.abc import Iterator
from pathlib import Path

import asyncpg
import httpx
import pytest

from tests.e2e.cli_processes import Serving, isolated_env, open_dir, postmaster, run_json, wait_until


@pytest.fixture
def home() -> Iterator[Path]:
    path = open_dir("scimledger-shared-")
    yield path
    wait_until(lambda: postmaster(path) is None, 30, "the embedded server to stop")
    shutil.rmtree(path, ignore_errors=True)


def alive(pid: int) -> bool:
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:  # another user's process (as root the server runs as postgres)
        return True
    return True


def new_connection_works(port: int) -> bool:
    """A fresh connection, as a pool opens after its old ones are gone (smart shutdown refuses these)."""

    async def connect() -> bool:
        conn = await asyncpg.connect(f"postgresql://postgres@127.0.0.1:{port}/scimledger", timeout=5)
        try:
            return bool(await conn.fetchval("SELECT 1") == 1)
        finally:
            await conn.close()

    return asyncio.run(connect())


def provision(url: str, token: str, user_name: str) -> int:
    answer = httpx.post(
        f"{url}/scim/v2/Users",
        json={"userName": user_name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    return answer.status_code


def test_stopping_the_first_server_leaves_the_database_to_the_second(home: Path) -> None:
    env = isolated_env(SCIMLEDGER_HOME=str(home))
    first, second = Serving(env), Serving(env)
    try:
        first.start()
        server = postmaster(home)
        assert server is not None
        second.start()
        assert postmaster(home) == server  # the second found and shared it
        token = json.loads((home / "demo-credentials.json").read_text())["token"]

        first.signal(signal.SIGTERM)  # a graceful stop (uvicorn exits by re-raising the signal)
        pid, port = server
        assert alive(pid) and postmaster(home) == server
        assert new_connection_works(port)
        for n in range(5):  # more connections than the second one's pool had open
            assert provision(second.url, token, f"after{n}@example.com") == 201
        assert new_connection_works(port)

        second.signal(signal.SIGTERM)
        wait_until(lambda: not alive(pid), 30, "the server to stop after its last user")
    finally:
        first.stop()
        second.stop()


def test_the_server_stops_when_its_last_user_is_killed(home: Path) -> None:
    env = isolated_env(SCIMLEDGER_HOME=str(home))
    with Serving(env) as only:
        server = postmaster(home)
        assert server is not None
        only.signal(signal.SIGKILL)
    wait_until(lambda: not alive(server[0]), 30, "the server to stop after its last user was killed")
    assert postmaster(home) is None


def test_a_server_started_by_a_command_serves_a_later_serve(home: Path) -> None:
    """A one-shot command starts the server on existing data; a ``serve`` that attaches meanwhile keeps it
    when the command ends."""
    env = isolated_env(SCIMLEDGER_HOME=str(home))
    with Serving(env):
        pass  # the first run made the database; the server stops with it
    wait_until(lambda: postmaster(home) is None, 30, "the server to stop")
    with Serving(env) as serving:
        server = postmaster(home)
        assert server is not None
        run_json(env, "workspace", "create", "--name", "Acme")  # attaches, then ends
        assert postmaster(home) == server and new_connection_works(server[1])
        token = json.loads((home / "demo-credentials.json").read_text())["token"]
        assert provision(serving.url, token, "later@example.com") == 201
