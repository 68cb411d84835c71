"""Fixtures for end-to-end tests that need a real ``scimledger serve`` process."""

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

from tests.e2e.dns_server import dns_server  # noqa: F401 - a DNS server on 127.0.0.1 (issue 8)

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


def serve(*extra: str) -> Iterator[tuple[str, dict[str, str], Path]]:
    """A ``scimledger serve`` process on a free port with its own home and embedded PostgreSQL."""
    home = Path(tempfile.mkdtemp(prefix="scimledger-serve-"))
    home.chmod(0o755)
    env = embedded_env(home)
    port = free_port()
    proc = subprocess.Popen(
        [*CLI, "serve", "--port", str(port), *extra],
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


@pytest.fixture
def server() -> Iterator[tuple[str, dict[str, str], Path]]:
    yield from serve()


@pytest.fixture
def two_worker_server() -> Iterator[tuple[str, dict[str, str], Path]]:
    yield from serve("--workers", "2")
