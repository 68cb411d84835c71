"""What the server logs (README, "Operating it"): text lines by default, JSON lines with
``SCIMLEDGER_LOG_FORMAT=json``, the level from ``SCIMLEDGER_LOG_LEVEL``; the access line carries method,
route template, status, duration, request id, workspace and token; a traceback only for a real 500.
Real server processes (``scimledger serve``, and ``tests/e2e/log_server.py`` for a handler that raises)
write to stderr, read once they have stopped."""

from __future__ import annotations

import json
import logging
import os
import subprocess
import sys
import time
from collections.abc import Iterator
from typing import Any

import httpx
import pytest

from scimledger.config import ConfigError
from scimledger.logs import JsonFormatter, LogSettings
from scimledger.store.event_store import EventStore
from tests.conftest import Workspace, make_workspace, temp_home
from tests.e2e.conftest import CLI, free_port


@pytest.fixture
async def workspace_with_token_id(store: EventStore) -> tuple[Workspace, str]:
    ws = await make_workspace(store, domains=("example.com",), seats=10)
    token_id = await store.pool.fetchval("SELECT id::text FROM tokens WHERE workspace_id = $1", ws.id)
    return ws, token_id


class Server:
    def __init__(self, argv: list[str], env: dict[str, str]) -> None:
        self.proc = subprocess.Popen(argv, env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
        self.url = f"http://127.0.0.1:{env['TEST_PORT']}"
        deadline = time.monotonic() + 60
        while True:
            assert self.proc.poll() is None, self.proc.communicate()[1]
            assert time.monotonic() < deadline, "the server did not start"
            try:
                if httpx.get(f"{self.url}/healthz", timeout=1).status_code == 200:
                    return
            except httpx.TransportError:
                time.sleep(0.1)

    def stop(self) -> str:
        """Stop the server; everything it wrote to stderr."""
        self.proc.terminate()
        try:
            return self.proc.communicate(timeout=30)[1]
        except subprocess.TimeoutExpired:
            self.proc.kill()
            return self.proc.communicate()[1]


@pytest.fixture
def start(database_url: str) -> Iterator[Any]:
    """``start(kind, **env)``: ``scimledger serve`` (kind "serve") or the log test server ("boom") on the
    test's database, with extra environment variables."""
    started: list[Server] = []

    def run(kind: str, **extra: str) -> Server:
        port = str(free_port())
        env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMLEDGER_LOG_")}
        env.update(DATABASE_URL=database_url, SCIMLEDGER_HOME=str(temp_home()), TEST_PORT=port, **extra)
        env.pop("SCIMLEDGER_MIGRATE_URL", None)
        argv = (
            [*CLI, "serve", "--port", port]
            if kind == "serve"
            else [sys.executable, "-m", "tests.e2e.log_server", database_url, port]
        )
        started.append(Server(argv, env))
        return started[-1]

    yield run
    for server in started:
        if server.proc.poll() is None:
            server.stop()


def json_lines(stderr: str) -> list[dict[str, Any]]:
    """Every line of ``stderr`` as a JSON object (fails on any line that is not one)."""
    records = []
    for line in stderr.splitlines():
        if line.strip():
            record = json.loads(line)
            assert isinstance(record, dict), line
            records.append(record)
    return records


def test_json_lines_carry_the_access_fields_and_no_traceback_for_client_errors(
    start: Any, workspace_with_token_id: tuple[Workspace, str]
) -> None:
    ws, token_id = workspace_with_token_id
    server = start("serve", SCIMLEDGER_LOG_FORMAT="json")
    headers = {**ws.auth, "X-Request-Id": "log-test-json"}
    assert httpx.get(f"{server.url}/scim/v2/Users/{ws.id}", headers=headers).status_code == 404
    assert httpx.get(f"{server.url}/scim/v2/Users").status_code == 401
    records = json_lines(server.stop())
    assert any(r["logger"].startswith("uvicorn") for r in records)  # uvicorn's own lines are JSON too
    (access,) = [r for r in records if r.get("request_id") == "log-test-json"]
    assert access["logger"] == "scimledger.access" and access["level"] == "info"
    assert (access["method"], access["route"], access["status"]) == ("GET", "/scim/v2/Users/{id}", 404)
    assert access["path"] == f"/scim/v2/Users/{ws.id}"
    assert access["duration_ms"] > 0 and access["time"].endswith("+00:00")
    assert (access["workspace"], access["token"]) == (str(ws.id), token_id)
    assert not [r for r in records if "exception" in r]  # a 404 and a 401 are not server errors


def test_the_default_is_one_text_line_per_request(
    start: Any, workspace_with_token_id: tuple[Workspace, str]
) -> None:
    ws, token_id = workspace_with_token_id
    server = start("serve")
    headers = {**ws.auth, "X-Request-Id": "log-test-text"}
    assert httpx.get(f"{server.url}/scim/v2/Users", headers=headers).status_code == 200
    (line,) = [line for line in server.stop().splitlines() if "request_id=log-test-text" in line]
    assert " INFO scimledger.access: GET /scim/v2/Users 200 " in line
    assert line.endswith(f"request_id=log-test-text workspace={ws.id} token={token_id}")


def test_at_level_warning_no_access_line_is_written(
    start: Any, workspace_with_token_id: tuple[Workspace, str]
) -> None:
    ws, _ = workspace_with_token_id
    server = start("serve", SCIMLEDGER_LOG_FORMAT="json", SCIMLEDGER_LOG_LEVEL="warning")
    assert httpx.get(f"{server.url}/scim/v2/Users", headers=ws.auth).status_code == 200
    records = json_lines(server.stop())
    assert all(r["level"] in ("warning", "error", "critical") for r in records), records


def test_a_server_error_is_logged_with_its_traceback_once(start: Any) -> None:
    server = start("boom", SCIMLEDGER_LOG_FORMAT="json")
    assert httpx.get(f"{server.url}/test/boom").status_code == 500
    records = json_lines(server.stop())
    (traced,) = [r for r in records if "exception" in r]
    assert traced["message"] == "unexpected error on GET /test/boom" and traced["level"] == "error"
    assert "RuntimeError: a bug in a handler" in traced["exception"]
    (boom_access,) = [r for r in records if r.get("route") == "/test/boom"]
    assert boom_access["status"] == 500 and boom_access["logger"] == "scimledger.access"
    repeated = [r for r in records if r["message"].startswith("Exception in ASGI application")]
    assert repeated and all("traceback logged above" in r["message"] for r in repeated)


def test_the_formatter_writes_extras_and_the_traceback_as_keys() -> None:
    try:
        raise ValueError("broken")
    except ValueError:
        record = logging.getLogger("x").makeRecord(
            "x", logging.ERROR, __file__, 1, "failed %s", ("here",), sys.exc_info(), extra={"workspace": 7}
        )
    out = json.loads(JsonFormatter().format(record))
    assert (out["message"], out["level"], out["logger"], out["workspace"]) == ("failed here", "error", "x", 7)
    assert "ValueError: broken" in out["exception"]


def test_bad_settings_name_their_variable(monkeypatch: pytest.MonkeyPatch) -> None:
    assert LogSettings.from_env() == LogSettings("text", "info")
    monkeypatch.setenv("SCIMLEDGER_LOG_LEVEL", "verbose")
    with pytest.raises(ConfigError) as refused:
        LogSettings.from_env()
    assert refused.value.setting == "SCIMLEDGER_LOG_LEVEL"
    monkeypatch.setenv("SCIMLEDGER_LOG_LEVEL", "DEBUG")
    monkeypatch.setenv("SCIMLEDGER_LOG_FORMAT", "xml")
    with pytest.raises(ConfigError) as refused:
        LogSettings.from_env()
    assert refused.value.setting == "SCIMLEDGER_LOG_FORMAT"
