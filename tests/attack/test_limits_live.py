"""Every limit of the README "Limits" table against a real ``scimledger serve`` process (issue 8, "Attack
suite"): each is answered with the right 4xx within 50 ms (the refused request itself, timed from the
client: the median of three tries, so that one scheduling hiccup on a loaded machine is not a failure),
refused writes append nothing, and the server's memory stays flat while oversized bodies arrive in parallel
(its RSS from ``/proc/<pid>/status``).

One server serves the module, on a database of its own cloned from the suite's template (with or without
``DATABASE_URL``), with low rate limits: ``SCIMLEDGER_RATE_LIMIT=2/s,25`` per credential and
``SCIMLEDGER_AUTH_FAILURE_LIMIT=1/s,5`` per client address. The failed-authentication test connects from
127.0.0.2, so that the address it gets throttled is not the one the other tests use.
"""

from __future__ import annotations

import asyncio
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable, Coroutine, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import httpx
import pytest

from scimledger import credentials
from scimledger.api.body_limit import MAX_BODY_BYTES
from scimledger.api.discovery import BULK_MAX_OPERATIONS
from scimledger.api.request_context import MAX_USER_AGENT
from scimledger.domain.limits import MAX_DESCRIPTION, MAX_NAME
from scimledger.domain.workspace import MAX_SEATS_ADDED
from tests.conftest import with_database

CLI = [sys.executable, "-m", "scimledger.cli"]
WITHIN = 0.050  # seconds: every refusal
RSS_GROWTH = 30 * 1024 * 1024  # bytes: eight oversized bodies of each kind at once
HUNDRED_MB = 100 * 1024 * 1024
BULK = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"


@dataclass(frozen=True)
class Server:
    url: str
    host: str
    port: int
    pid: int
    database_url: str
    env: dict[str, str]
    workspace_id: str
    token: str
    admin_key: str

    @property
    def scim(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}

    @property
    def admin(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.admin_key}"}


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@pytest.fixture(scope="module")
async def limits_database(server_url: str, template_database: str) -> AsyncIterator[str]:
    name = f"scimledger_limits_{uuid4().hex[:12]}"
    conn = await asyncpg.connect(server_url)
    try:
        await conn.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        yield with_database(server_url, name)
        await conn.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await conn.close()


@pytest.fixture(scope="module")
def server(limits_database: str) -> Iterator[Server]:
    home = Path(tempfile.mkdtemp(prefix="scimledger-limits-"))
    env = {
        **os.environ,
        "DATABASE_URL": limits_database,
        "SCIMLEDGER_HOME": str(home),
        "SCIMLEDGER_RATE_LIMIT": "2/s,25",
        "SCIMLEDGER_AUTH_FAILURE_LIMIT": "1/s,5",
    }
    env.pop("SCIMLEDGER_WORKERS", None)
    env.pop("SCIMLEDGER_MIGRATE_URL", None)
    port = free_port()
    log = (home / "serve.log").open("w")
    proc = subprocess.Popen(
        [*CLI, "serve", "--host", "127.0.0.1", "--port", str(port)],
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while True:  # discovery needs no credential, so waiting spends no rate limit
            assert proc.poll() is None, (home / "serve.log").read_text()
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{url}/scim/v2/ServiceProviderConfig", timeout=1).status_code == 200:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
        demo = json.loads((home / "demo-credentials.json").read_text())
        yield Server(
            url,
            "127.0.0.1",
            port,
            proc.pid,
            limits_database,
            env,
            demo["workspace_id"],
            demo["token"],
            demo["admin_key"],
        )
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        shutil.rmtree(home, ignore_errors=True)


def run(coroutine: Coroutine[Any, Any, Any]) -> Any:
    """Run ``coroutine`` on an event loop of its own, in a helper thread."""
    box: list[Any] = []
    thread = threading.Thread(target=lambda: box.append(asyncio.run(coroutine)))
    thread.start()
    thread.join(60)
    return box[0]


def event_count(server: Server) -> int:
    async def count() -> int:
        conn = await asyncpg.connect(server.database_url)
        try:
            return int(await conn.fetchval("SELECT count(*) FROM events"))
        finally:
            await conn.close()

    return int(run(count()))


def rss(pid: int) -> int:
    """The process's resident set size in bytes (``VmRSS`` of ``/proc/<pid>/status``)."""
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    raise AssertionError("no VmRSS")


def timed(send: Callable[[], tuple[int, dict[str, str], bytes]], tries: int = 3) -> tuple[float, list[Any]]:
    """The median time of ``tries`` sends, and their answers."""
    times, answers = [], []
    for _ in range(tries):
        started = time.perf_counter()
        answers.append(send())
        times.append(time.perf_counter() - started)
    return statistics.median(times), answers


def httpx_send(
    client: httpx.Client, method: str, path: str, **kwargs: Any
) -> Callable[[], tuple[int, dict[str, str], bytes]]:
    def send() -> tuple[int, dict[str, str], bytes]:
        response = client.request(method, path, **kwargs)
        return response.status_code, dict(response.headers), response.content

    return send


# --------------------------------------------------------------------------------------------------
# Raw HTTP, for bodies that are declared but never (fully) sent


def read_response(sock: socket.socket) -> tuple[int, dict[str, str], bytes]:
    """One HTTP/1.1 response with a Content-Length body."""
    data = b""
    while b"\r\n\r\n" not in data:
        chunk = sock.recv(65536)
        if not chunk:
            raise ConnectionError(f"closed before a response: {data!r}")
        data += chunk
    head, _, body = data.partition(b"\r\n\r\n")
    lines = head.decode("latin-1").split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (line.partition(":") for line in lines[1:])}
    length = int(headers.get("content-length", "0"))
    while len(body) < length:
        chunk = sock.recv(65536)
        if not chunk:
            break
        body += chunk
    return status, headers, body


def oversized(
    server: Server, path: str, auth: dict[str, str], *, chunked: bool, send_bytes: int = 0
) -> Callable[[], tuple[int, dict[str, str], bytes]]:
    """A POST announcing a 100 MB body (``Content-Length``) or a chunked one, then sending up to
    ``send_bytes`` of it in a thread (stopping when the server closes the connection)."""

    def send() -> tuple[int, dict[str, str], bytes]:
        sock = socket.create_connection((server.host, server.port), timeout=10)
        sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        framing = "Transfer-Encoding: chunked" if chunked else f"Content-Length: {HUNDRED_MB}"
        head = (
            f"POST {path} HTTP/1.1\r\nHost: {server.host}\r\nAuthorization: {auth['Authorization']}\r\n"
            f"Content-Type: application/json\r\n{framing}\r\n\r\n"
        )
        piece = b" " * 65536
        frame = (b"%x\r\n" % len(piece)) + piece + b"\r\n" if chunked else piece

        def pour() -> None:
            sent = 0
            try:
                while sent < send_bytes:
                    sock.sendall(frame)
                    sent += len(piece)
            except OSError:
                pass  # the server answered and closed: what we want

        try:
            sock.sendall(head.encode())
            pourer = threading.Thread(target=pour, daemon=True)
            pourer.start()
            answer = read_response(sock)
            pourer.join(10)
            return answer
        finally:
            sock.close()

    return send


# --------------------------------------------------------------------------------------------------
# Bodies


@pytest.mark.parametrize("path", ["/scim/v2/Users", "/scim/v2/Bulk", "/api/v1/tokens"])
def test_a_declared_100_mb_body_is_413_at_once(server: Server, path: str) -> None:
    auth = server.admin if path.startswith("/api/") else server.scim
    before = event_count(server)
    median, answers = timed(oversized(server, path, auth, chunked=False))
    assert [status for status, _, _ in answers] == [413] * 3
    assert median < WITHIN, f"{median * 1000:.1f} ms"
    assert event_count(server) == before


@pytest.mark.parametrize("path", ["/scim/v2/Users", "/api/v1/members"])
def test_a_chunked_body_is_cut_off_at_1_mib_with_413(server: Server, path: str) -> None:
    auth = server.admin if path.startswith("/api/") else server.scim
    before = event_count(server)
    median, answers = timed(oversized(server, path, auth, chunked=True, send_bytes=8 * MAX_BODY_BYTES))
    assert [status for status, _, _ in answers] == [413] * 3
    assert median < WITHIN, f"{median * 1000:.1f} ms"
    assert event_count(server) == before


def test_memory_stays_flat_under_parallel_oversized_bodies(server: Server) -> None:
    """Eight declared 100 MB bodies and eight chunked ones, each pouring up to 16 MB, all at once."""
    sends = [
        oversized(server, "/scim/v2/Users", server.scim, chunked=False, send_bytes=16 << 20) for _ in range(8)
    ]
    sends += [
        oversized(server, "/scim/v2/Users", server.scim, chunked=True, send_bytes=16 << 20) for _ in range(8)
    ]
    httpx.get(f"{server.url}/scim/v2/ServiceProviderConfig")  # warm
    before = rss(server.pid)
    results: list[int] = []
    threads = [threading.Thread(target=lambda s=s: results.append(s()[0])) for s in sends]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    after = rss(server.pid)
    assert results == [413] * 16
    assert after - before < RSS_GROWTH, f"RSS grew by {(after - before) / 1e6:.1f} MB"
    assert httpx.get(f"{server.url}/scim/v2/ServiceProviderConfig").status_code == 200


def test_bulk_over_its_operations_limit_is_413(server: Server) -> None:
    operation = {"method": "POST", "path": "/Users", "data": {"userName": "bulk@example.com"}}
    body = {"schemas": [BULK], "Operations": [operation] * (BULK_MAX_OPERATIONS + 1)}
    before = event_count(server)
    with httpx.Client(base_url=server.url) as client:
        median, answers = timed(httpx_send(client, "POST", "/scim/v2/Bulk", json=body, headers=server.scim))
    assert [status for status, _, _ in answers] == [413] * 3
    assert median < WITHIN, f"{median * 1000:.1f} ms"
    assert event_count(server) == before


# --------------------------------------------------------------------------------------------------
# Stored strings and counts

TOO_LONG = "x" * (MAX_NAME + 1)
BOUNDED = [
    ("admin", "POST", "/api/v1/tokens", {"name": TOO_LONG}),
    ("admin", "POST", "/api/v1/tokens", {"name": "t", "description": "d" * (MAX_DESCRIPTION + 1)}),
    ("admin", "POST", "/api/v1/teams", {"name": TOO_LONG}),
    ("admin", "POST", "/api/v1/members", {"user_name": f"{TOO_LONG}@example.com"}),
    ("admin", "POST", "/api/v1/seats", {"count": MAX_SEATS_ADDED + 1}),
    ("scim", "POST", "/scim/v2/Users", {"userName": f"{TOO_LONG}@example.com"}),
    ("scim", "POST", "/scim/v2/Groups", {"displayName": TOO_LONG}),
]


@pytest.mark.parametrize(
    ("api", "method", "path", "body"), BOUNDED, ids=[f"{p}-{list(b)[-1]}" for _, _, p, b in BOUNDED]
)
def test_a_value_over_its_limit_is_400_and_appends_nothing(
    server: Server, api: str, method: str, path: str, body: Any
) -> None:
    before = event_count(server)
    with httpx.Client(base_url=server.url) as client:
        headers = server.admin if api == "admin" else server.scim
        median, answers = timed(httpx_send(client, method, path, json=body, headers=headers))
    assert [status for status, _, _ in answers] == [400] * 3, answers[0]
    assert median < WITHIN, f"{median * 1000:.1f} ms"
    assert event_count(server) == before


def test_an_audit_page_over_1000_is_400(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        median, answers = timed(
            httpx_send(client, "GET", "/api/v1/audit", params={"limit": "1001"}, headers=server.admin)
        )
    assert [status for status, _, _ in answers] == [400] * 3
    assert median < WITHIN, f"{median * 1000:.1f} ms"


def test_a_workspace_name_over_its_limit_is_refused_by_the_cli(server: Server) -> None:
    before = event_count(server)
    done = subprocess.run(
        [*CLI, "workspace", "create", "--name", TOO_LONG],
        env=server.env,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 2, done.stderr
    assert f"limited to {MAX_NAME} characters" in done.stderr
    assert event_count(server) == before


def test_header_metadata_is_bounded(server: Server) -> None:
    """A 100 kB User-Agent keeps its first 256 characters in the log; an overlong X-Request-Id is replaced
    by a generated one."""
    user_agent = "A" * 100_000
    request_id = "r" * 200
    with httpx.Client(base_url=server.url) as client:
        response = client.post(
            "/scim/v2/Users",
            json={"userName": f"ua-{uuid4().hex[:8]}@example.com"},
            headers={**server.scim, "User-Agent": user_agent, "X-Request-Id": request_id},
        )
    assert response.status_code == 201, response.text
    generated = response.headers["x-request-id"]
    assert generated != request_id and len(generated) == 32

    async def metadata() -> list[Any]:
        conn = await asyncpg.connect(server.database_url)
        try:
            return list(
                await conn.fetch(
                    "SELECT metadata::text AS m FROM events WHERE metadata->>'request_id' = $1", generated
                )
            )
        finally:
            await conn.close()

    rows = run(metadata())
    assert rows
    for row in rows:
        stored = json.loads(row["m"])
        assert stored["user_agent"] == user_agent[:MAX_USER_AGENT]
        assert len(row["m"]) < 2_000


# --------------------------------------------------------------------------------------------------
# Rates


def test_a_token_over_its_rate_is_429_with_retry_after_at_once(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        made = client.post("/api/v1/tokens", json={"name": "burst"}, headers=server.admin)
        assert made.status_code == 201
        auth = {"Authorization": f"Bearer {made.json()['token']}"}
        statuses = [client.get("/scim/v2/Users", headers=auth).status_code for _ in range(25)]
        assert statuses.count(200) >= 20
        median, answers = timed(httpx_send(client, "GET", "/scim/v2/Users", headers=auth))
    assert [status for status, _, _ in answers] == [429] * 3
    assert all(int(headers["retry-after"]) >= 1 for _, headers, _ in answers)
    assert json.loads(answers[0][2])["status"] == "429"
    assert median < WITHIN, f"{median * 1000:.1f} ms"


def test_an_admin_key_over_its_rate_is_429(server: Server) -> None:
    with httpx.Client(base_url=server.url) as client:
        for _ in range(30):
            if client.get("/api/v1/workspace", headers=server.admin).status_code == 429:
                break
        median, answers = timed(httpx_send(client, "GET", "/api/v1/workspace", headers=server.admin))
    assert [status for status, _, _ in answers] == [429] * 3
    assert json.loads(answers[0][2])["error"]["code"] == "rate_limited"
    assert "retry-after" in answers[0][1]
    assert median < WITHIN, f"{median * 1000:.1f} ms"


def test_failed_authentications_from_one_address_are_429_even_for_a_valid_token(server: Server) -> None:
    forged = {"Authorization": f"Bearer {credentials.generate(credentials.SCIM_TOKEN_PREFIX)}"}
    transport = httpx.HTTPTransport(local_address="127.0.0.2")
    with httpx.Client(base_url=server.url, transport=transport) as client:
        statuses = [client.get("/scim/v2/Users", headers=forged).status_code for _ in range(5)]
        assert statuses == [401] * 5
        median, answers = timed(httpx_send(client, "GET", "/scim/v2/Users", headers=forged))
        valid = client.get("/scim/v2/Groups", headers=server.scim)
    assert [status for status, _, _ in answers] == [429] * 3
    assert int(answers[0][1]["retry-after"]) >= 1
    assert median < WITHIN, f"{median * 1000:.1f} ms"
    assert valid.status_code == 429
