"""Erasure on a live ``scimledger serve`` (issue 11; README "Erasure (crypto-shredding)"): after a person was
provisioned, grouped, renamed, looked up, notified and removed, then erased, neither the server's log
(debug level, notifications and access lines included) nor any table of the database holds anything the
IdP sent about them.
"""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import time
from pathlib import Path
from typing import BinaryIO

import asyncpg
import httpx

from scimledger.store.event_store import EventStore
from tests.attack.test_authentication import pg_dump
from tests.conftest import make_workspace
from tests.e2e.conftest import free_port
from tests.e2e.test_erasure import ADA, holding, tables_holding

STARTUP_SECONDS = 60
DELIVERY_SECONDS = 60


def start_server(port: int, env: dict[str, str], out: BinaryIO) -> subprocess.Popen[bytes]:
    command = [sys.executable, "-m", "scimledger.cli", "serve", "--port", str(port)]
    return subprocess.Popen(command, env=env, stdout=out, stderr=subprocess.STDOUT)


def wait_until_serving(url: str, proc: subprocess.Popen[bytes], log: Path) -> None:
    deadline = time.monotonic() + STARTUP_SECONDS
    while time.monotonic() < deadline:
        assert proc.poll() is None, log.read_text()
        try:
            if httpx.get(f"{url}/scim/v2/Users", timeout=1).status_code == 401:
                return
        except httpx.TransportError:
            time.sleep(0.1)
    raise AssertionError(f"the server did not start: {log.read_text()}")


async def wait_until_delivered(pool: asyncpg.Pool, kind: str) -> None:
    """The server's runner queued and delivered a ``kind`` notification (to its Maildir, with a log line)."""
    deadline = time.monotonic() + DELIVERY_SECONDS
    while not await pool.fetchval("SELECT count(*) FROM outbox_delivery WHERE kind = $1", kind):
        assert time.monotonic() < deadline, await pool.fetch("SELECT * FROM outbox")
        await asyncio.sleep(0.2)


async def test_a_live_servers_log_holds_no_trace_of_an_erased_person(
    store: EventStore, pool: asyncpg.Pool, database_url: str, tmp_path: Path
) -> None:
    ws = await make_workspace(store, domains=("example.com",), seats=10)
    home, log = tmp_path / "home", tmp_path / "server.log"
    home.mkdir()  # the notifications' Maildir goes there
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "SCIMLEDGER_HOME": str(home),
        "SCIMLEDGER_LOG_LEVEL": "debug",
        "SCIMLEDGER_RATE_LIMIT": "0",
    }
    port = free_port()
    url = f"http://127.0.0.1:{port}"
    with log.open("wb") as out:
        proc = start_server(port, env, out)
        try:
            wait_until_serving(url, proc, log)
            async with httpx.AsyncClient(base_url=url, timeout=30) as client:
                created = await client.post("/scim/v2/Users", json=ADA, headers=ws.auth)
                assert created.status_code == 201, created.text
                member_id = created.json()["id"]
                group = {
                    "displayName": "Engines",
                    "members": [{"value": member_id, "display": "Augusta Ada"}],
                }
                assert (await client.post("/scim/v2/Groups", json=group, headers=ws.auth)).status_code == 201
                rename = {
                    "schemas": ["urn:ietf:params:scim:api:messages:2.0:PatchOp"],
                    "Operations": [{"op": "replace", "path": "name.givenName", "value": "Augusta Ada"}],
                }
                patched = await client.patch(f"/scim/v2/Users/{member_id}", json=rename, headers=ws.auth)
                assert patched.status_code == 200, patched.text
                found = await client.get(
                    "/scim/v2/Users", params={"filter": f'userName eq "{ADA["userName"]}"'}, headers=ws.auth
                )
                assert [r["id"] for r in found.json()["Resources"]] == [member_id]
                assert (
                    await client.delete(f"/scim/v2/Users/{member_id}", headers=ws.auth)
                ).status_code == 204
                await wait_until_delivered(pool, "sessions_revoked")
                erased = await client.post(
                    f"/api/v1/members/{member_id}/erase",
                    json={"reason": "GDPR art. 17"},
                    headers={"Authorization": f"Bearer {ws.admin_key}"},
                )
                assert erased.status_code == 200, erased.text
        finally:
            proc.terminate()
            proc.wait(timeout=30)
    text = log.read_text()
    assert "notification added" in text and "notification sessions_revoked" in text, text[-3000:]
    assert "/api/v1/members/{id}/erase" in text  # the access lines were written too
    assert holding(text) == [], [line for line in text.splitlines() if holding(line)]
    assert tables_holding(pg_dump(database_url)) == {}
