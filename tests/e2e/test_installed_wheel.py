"""The installed package works (issue 10, defect 1): the wheel is built from the checkout, installed into a
fresh virtual environment outside it, and from there `scimledger migrate`, `serve`, one SCIM POST and
`audit verify` run against an empty database. An editable install hides a missing package or data file
(handlers, audit, static, schema.sql); this does not."""

from __future__ import annotations

import asyncio
import json
import subprocess
import sys
import tempfile
from pathlib import Path
from uuid import uuid4

import asyncpg
import httpx

from tests.conftest import with_database
from tests.e2e.cli_processes import isolated_env

ROOT = Path(__file__).resolve().parents[2]


def sh(*args: str | Path, env: dict[str, str] | None = None, cwd: Path | None = None) -> str:
    done = subprocess.run(
        [str(a) for a in args], env=env, cwd=cwd, capture_output=True, text=True, timeout=600, check=False
    )
    assert done.returncode == 0, f"{args}: {done.stdout[-2000:]}{done.stderr[-3000:]}"
    return done.stdout


def test_the_wheel_installs_outside_the_checkout_and_migrates_serves_and_verifies(
    server_url: str,
) -> None:
    outside = Path(tempfile.mkdtemp(prefix="scimledger-wheel-"))
    sh(sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", outside / "dist", ROOT)
    wheel = next((outside / "dist").glob("scimledger-*.whl"))
    sh(sys.executable, "-m", "venv", outside / "venv")
    sh(outside / "venv" / "bin" / "pip", "install", "--quiet", wheel)
    cli = outside / "venv" / "bin" / "scimledger"

    name = f"scimledger_wheel_{uuid4().hex[:12]}"
    asyncio.run(_sql(server_url, f'CREATE DATABASE "{name}"'))  # empty: the installed package migrates it
    try:
        env = isolated_env(
            DATABASE_URL=with_database(server_url, name), SCIMLEDGER_HOME=str(outside / "home")
        )
        work = outside / "elsewhere"
        work.mkdir()
        assert json.loads(sh(cli, "migrate", env=env, cwd=work)) == {"migrated": True}
        created = json.loads(
            sh(
                cli,
                "workspace",
                "create",
                "--name",
                "Wheel",
                "--domain",
                "example.com",
                "--seats",
                "5",
                env=env,
                cwd=work,
            )
        )
        ws = created["workspace_id"]
        token = json.loads(sh(cli, "token", "create", "--workspace", ws, "--name", "idp", env=env, cwd=work))[
            "token"
        ]

        port = _free_port()
        log = (outside / "serve.log").open("wb")
        server = subprocess.Popen(
            [cli, "serve", "--port", str(port)], env=env, cwd=work, stdout=log, stderr=subprocess.STDOUT
        )
        try:
            base = f"http://127.0.0.1:{port}"
            _wait_for(base, server, outside / "serve.log")
            answer = httpx.post(
                f"{base}/scim/v2/Users",
                json={
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
                    "userName": "ada@example.com",
                },
                headers={"Authorization": f"Bearer {token}"},
            )
            assert answer.status_code == 201, answer.text
            admin_page = httpx.get(f"{base}/admin")  # static files ship in the wheel
            assert admin_page.status_code == 200 and "<html" in admin_page.text.lower()
        finally:
            server.terminate()
            server.wait(timeout=30)
            log.close()
        verified = json.loads(sh(cli, "audit", "verify", "--workspace", ws, env=env, cwd=work))
        assert verified["ok"] is True
    finally:
        asyncio.run(_sql(server_url, f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


async def _sql(url: str, statement: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await conn.execute(statement)
    finally:
        await conn.close()


def _free_port() -> int:
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def _wait_for(base: str, server: subprocess.Popen[bytes], log: Path) -> None:
    import time

    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            if httpx.get(f"{base}/healthz", timeout=1).status_code == 200:
                return
        except httpx.TransportError:
            pass
        assert server.poll() is None, log.read_text()[-3000:]
        time.sleep(0.2)
    raise AssertionError("the installed server did not start")
