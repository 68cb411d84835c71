"""A PostgreSQL outage (issue 8, defect 9): while the database is down the server answers 503 with
``Retry-After`` quickly, keeps the client's keep-alive connection, and recovers by itself when PostgreSQL
is back, without a restart of the app."""

from __future__ import annotations

import asyncio
import http.client
import os
import shutil
import signal
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from projections.runner import CatchUpRunner
from scimledger import handlers, pg
from scimledger.app import build_store
from scimledger.notifications import LogSender
from tests.conftest import SYSTEM, make_workspace
from tests.e2e.live_server import live_server


@pytest.fixture
def own_server() -> Iterator[tuple[Path, pg.EmbeddedServer]]:
    """A PostgreSQL of this test's own, which it may stop and start."""
    home = Path(tempfile.mkdtemp(prefix="scimledger-outage-"))
    home.chmod(0o755)
    server = pg.ensure_server(home)  # fsync on: an immediate stop must lose nothing committed
    try:
        yield home, server
    finally:
        found = pg.ensure_server(home, port=server.port)
        pg.stop_server(found)
        shutil.rmtree(found.data_dir, ignore_errors=True)
        shutil.rmtree(home, ignore_errors=True)


def stop_immediately(server: pg.EmbeddedServer) -> None:
    """``pg_ctl stop -m immediate``: SIGQUIT to the postmaster, no shutdown checkpoint."""
    os.kill(server.pid, signal.SIGQUIT)
    child = pg._CHILDREN.pop(server.pid, None)  # reap it, as pg.stop_server does
    if child is not None:
        child.wait(timeout=30)
    deadline = time.monotonic() + 30
    while (server.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
        time.sleep(0.05)


def get(conn: http.client.HTTPConnection, path: str, token: str) -> tuple[int, dict[str, str], bytes]:
    conn.request("GET", path, headers={"Authorization": f"Bearer {token}"})
    response = conn.getresponse()
    return response.status, {k.lower(): v for k, v in response.getheaders()}, response.read()


async def test_an_outage_is_503_with_retry_after_on_the_same_connection_then_recovers(
    own_server: tuple[Path, pg.EmbeddedServer],
) -> None:
    home, server = own_server
    url = server.url()
    setup = await pg.create_pool(url, min_size=1, max_size=2)
    async with setup.acquire() as conn:
        await pg.migrate(conn)
    workspace: Any = await make_workspace(build_store(setup))
    await setup.close()
    with live_server(url, run_lagging=False) as base:
        host, port = base.removeprefix("http://").split(":")
        client = http.client.HTTPConnection(host, int(port), timeout=10)
        assert get(client, "/scim/v2/Users", workspace.token)[0] == 200
        stop_immediately(server)
        socket_before = client.sock
        for _ in range(3):
            started = time.monotonic()
            status, headers, body = get(client, "/scim/v2/Users", workspace.token)
            assert status == 503, body
            assert headers["retry-after"] == "1"
            assert b'"status":"503"' in body
            assert time.monotonic() - started < 5
            assert headers.get("connection", "").lower() != "close"
            assert client.sock is socket_before  # the keep-alive connection survived the error
        await asyncio.to_thread(pg.ensure_server, home, port=server.port)
        deadline = time.monotonic() + 20
        status = 0
        while status != 200 and time.monotonic() < deadline:
            status = get(client, "/scim/v2/Users", workspace.token)[0]
            await asyncio.sleep(0.1)
        assert status == 200
        client.close()


async def test_listen_is_reopened_after_a_restart(own_server: tuple[Path, pg.EmbeddedServer]) -> None:
    """Issue 8, defect 8. The runner polls only every 60 s here, so an outbox row that appears within a few
    seconds of the write after the restart can only have been woken by NOTIFY on a re-opened LISTEN."""
    home, server = own_server
    url = server.url()
    pool = await pg.create_pool(url, min_size=1, max_size=4)
    async with pool.acquire() as conn:
        await pg.migrate(conn)
    store = build_store(pool)
    workspace: Any = await make_workspace(store, domains=("example.com",), seats=5)
    runner = CatchUpRunner(pool, url, sender=LogSender(), poll_seconds=60)
    await runner.start()
    try:
        await asyncio.sleep(0.5)  # the start-up pass is done; from now on only NOTIFY wakes the runner fast
        stop_immediately(server)
        await asyncio.to_thread(pg.ensure_server, home, port=server.port)
        for _ in range(200):
            if runner.listening:
                break
            await asyncio.sleep(0.05)
        assert runner.listening
        await asyncio.sleep(0.5)  # the reconnect pass is done
        command = handlers.ProvisionUser(
            workspace_id=workspace.id, user_name="late@example.com", profile={"userName": "late@example.com"}
        )
        done = await handlers.provision_user(store, command, SYSTEM)
        deadline = time.monotonic() + 5
        found = 0
        while not found and time.monotonic() < deadline:
            found = await pool.fetchval("SELECT count(*) FROM outbox WHERE member_id = $1", done.member.id)
            await asyncio.sleep(0.05)
        assert found
    finally:
        await runner.stop()
        await pool.close()


def test_a_pool_reconnect_failure_is_one_log_line() -> None:
    """asyncpg's pool logs a traceback per failed reconnect; the app keeps one line with the reason."""
    import logging

    from scimledger.app import OneLine

    try:
        raise ConnectionRefusedError(111, "Connect call failed")
    except ConnectionRefusedError:
        record = logging.LogRecord("asyncpg.pool", logging.WARNING, __file__, 1, "floor %s", ("x",), None)
        import sys

        record.exc_info = sys.exc_info()
    assert OneLine().filter(record)
    text = logging.Formatter().format(record)
    assert "\n" not in text
    assert "ConnectionRefusedError" in text and text.startswith("floor x")
