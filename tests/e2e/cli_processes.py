"""Real ``scimledger`` processes for the CLI tests (issue 10): one-shot commands and ``serve``, each with an
environment of its own (no inherited ``DATABASE_URL`` or ``SCIMLEDGER_*``, and a private
``XDG_CONFIG_HOME`` so that nothing is recorded in the developer's own configuration)."""

from __future__ import annotations

import contextlib
import json
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx

CLI = [sys.executable, "-m", "scimledger.cli"]
STARTUP_SECONDS = 60.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def isolated_env(**extra: str) -> dict[str, str]:
    """The test process's environment without scimledger's settings, with a fresh ``XDG_CONFIG_HOME``."""
    env = {
        k: v
        for k, v in os.environ.items()
        if not k.startswith("SCIMLEDGER_") and k not in ("DATABASE_URL", "XDG_CONFIG_HOME")
    }
    env["XDG_CONFIG_HOME"] = tempfile.mkdtemp(prefix="scimledger-xdg-")
    env["SCIMLEDGER_RATE_LIMIT"] = "0"
    env["SCIMLEDGER_AUTH_FAILURE_LIMIT"] = "0"
    env.update(extra)
    return env


def run(env: dict[str, str], *args: str, cwd: Path | None = None) -> subprocess.CompletedProcess[str]:
    """Run one command to its end."""
    return subprocess.run(
        [*CLI, *args], env=env, cwd=cwd, capture_output=True, text=True, timeout=120, check=False
    )


def run_json(env: dict[str, str], *args: str, cwd: Path | None = None) -> dict[str, Any]:
    done = run(env, *args, cwd=cwd)
    assert done.returncode == 0, done.stderr
    return dict(json.loads(done.stdout))


class Serving:
    """``scimledger serve`` in a session of its own; its stdout and stderr go to ``log``."""

    def __init__(
        self,
        env: dict[str, str],
        *extra: str,
        cwd: Path | None = None,
        log: Path | None = None,
        scheme: str = "http",
        verify: Any = True,
    ) -> None:
        self.env, self.extra, self.cwd, self.scheme, self.verify = env, extra, cwd, scheme, verify
        self.port = free_port()
        self.log = log or Path(tempfile.mkdtemp(prefix="scimledger-serve-log-")) / "serve.log"
        self.proc: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"{self.scheme}://127.0.0.1:{self.port}"

    def output(self) -> str:
        return self.log.read_text() if self.log.exists() else ""

    def start(self) -> Serving:
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port), *self.extra],
                env=self.env,
                cwd=self.cwd,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            with contextlib.suppress(httpx.TransportError):
                answer = httpx.get(f"{self.url}/scim/v2/ServiceProviderConfig", timeout=1, verify=self.verify)
                if answer.status_code == 200:
                    return self
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"serve did not start:\n{self.output()[-3000:]}")
            time.sleep(0.1)

    def signal(self, number: int, *, wait: float = 30.0) -> int:
        """Send ``number`` to the server's process group and wait for the server to exit."""
        assert self.proc is not None
        if self.proc.poll() is None:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(self.proc.pid, number)
        return self.proc.wait(timeout=wait)

    def stop(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            try:
                self.signal(signal.SIGTERM, wait=20)
            except subprocess.TimeoutExpired:
                self.signal(signal.SIGKILL)

    def __enter__(self) -> Serving:
        return self.start()

    def __exit__(self, *_: object) -> None:
        self.stop()


def postmaster(home: Path) -> tuple[int, int] | None:
    """(pid, port) of the embedded server running on ``home``, from its ``postmaster.pid``."""
    try:
        lines = (home / "pgdata" / "postmaster.pid").read_text().splitlines()
        return int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None


def wait_until(condition: Any, seconds: float, what: str) -> None:
    deadline = time.monotonic() + seconds
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.1)


def open_dir(prefix: str) -> Path:
    """A new directory the embedded server's user can enter (as root the server runs as ``postgres``)."""
    path = Path(tempfile.mkdtemp(prefix=prefix))
    path.chmod(0o755)
    return path
