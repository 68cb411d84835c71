"""The CLI contract and a real server process: ``scimledger serve`` on the embedded PostgreSQL, a second
command reusing that server, the first-run demo workspace, and a SCIM round trip over real HTTP."""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import httpx
import pytest

CLI = [sys.executable, "-m", "scimledger.cli"]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def embedded_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k != "DATABASE_URL"}
    env["SCIMLEDGER_HOME"] = str(home)
    return env


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    done = subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=120, check=False)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, str], Path]]:
    home = Path(tempfile.mkdtemp(prefix="scimledger-serve-"))
    home.chmod(0o755)
    env = embedded_env(home)
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port)],
        env=env,
        stdout=subprocess.PIPE,
        stderr=subprocess.PIPE,
        text=True,
    )
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 60
        while time.monotonic() < deadline:
            try:
                if httpx.get(f"{url}/scim/v2/Users", timeout=1).status_code == 401:
                    break
            except httpx.TransportError:
                time.sleep(0.1)
            assert proc.poll() is None, proc.communicate()[1]
        yield url, env, home
    finally:
        proc.terminate()
        try:
            _, stderr = proc.communicate(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
            _, stderr = proc.communicate()
        (home / "serve.stderr").write_text(stderr or "")
        data = home / "pgdata"
        deadline = time.monotonic() + 30
        while (data / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.1)  # the embedded server dies with its parent (PR_SET_PDEATHSIG)
        shutil.rmtree(home, ignore_errors=True)


def test_first_run_prints_demo_credentials_that_work(server: tuple[str, dict[str, str], Path]) -> None:
    url, _, home = server
    demo = json.loads((home / "demo-credentials.json").read_text())
    auth = {"Authorization": f"Bearer {demo['token']}"}
    created = httpx.post(
        f"{url}/scim/v2/Users", json={"userName": "demo@example.com"}, headers=auth, timeout=10
    )
    assert created.status_code == 201, created.text
    assert created.json()["meta"]["location"].startswith(url)
    found = httpx.get(
        f"{url}/scim/v2/Users", params={"filter": 'userName eq "DEMO@example.com"'}, headers=auth, timeout=10
    )
    assert found.json()["totalResults"] == 1


def test_second_command_reuses_the_running_server(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, home = server
    pid_before = (home / "pgdata" / "postmaster.pid").read_text().splitlines()[0]
    workspace = cli(env, "workspace", "create", "--name", "Acme", "--domain", "acme.test", "--seats", "5")
    assert set(workspace) == {"workspace_id", "admin_key"}
    token = cli(env, "token", "create", "--workspace", workspace["workspace_id"], "--name", "Okta")
    assert set(token) == {"token_id", "token"}
    assert (home / "pgdata" / "postmaster.pid").read_text().splitlines()[0] == pid_before
    response = httpx.post(
        f"{url}/scim/v2/Users",
        json={"userName": "x@acme.test"},
        headers={"Authorization": f"Bearer {token['token']}"},
        timeout=10,
    )
    assert response.status_code == 201, response.text


def test_read_only_token_cannot_write(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, _ = server
    workspace = cli(env, "workspace", "create", "--name", "Ro")
    token = cli(
        env,
        "token",
        "create",
        "--workspace",
        workspace["workspace_id"],
        "--name",
        "ro",
        "--scope",
        "scim:read",
    )
    auth = {"Authorization": f"Bearer {token['token']}"}
    assert httpx.get(f"{url}/scim/v2/Users", headers=auth, timeout=10).status_code == 200
    denied = httpx.post(f"{url}/scim/v2/Users", json={"userName": "y@ro.test"}, headers=auth, timeout=10)
    assert denied.status_code == 403
    assert denied.json()["schemas"] == ["urn:ietf:params:scim:api:messages:2.0:Error"]


def test_projections_rebuild_verify_exits_zero(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, home = server
    demo = json.loads((home / "demo-credentials.json").read_text())
    httpx.post(
        f"{url}/scim/v2/Users",
        json={"userName": "r@example.com"},
        headers={"Authorization": f"Bearer {demo['token']}"},
        timeout=10,
    )
    result = cli(env, "projections", "rebuild", "--verify")
    assert result["equal"] is True
