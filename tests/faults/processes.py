"""Real ``scimledger serve`` processes for the fault suite and the end-to-end tests: started against a given
database, killed with SIGKILL or stopped, and started again on the same port."""

from __future__ import annotations

import contextlib
import os
import signal
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx

from scimledger.store.keys import MASTER_ENV, new_secret_text

CLI = [sys.executable, "-m", "scimledger.cli"]
STARTUP_SECONDS = 60.0
# One master key for every process of a run (personal data keys, issue 11): the servers and the CLI checks.
MASTER_KEY = os.environ.get(MASTER_ENV) or new_secret_text()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class ServeProcess:
    """``scimledger serve`` on ``database_url`` (rate limits off unless ``env`` sets them), in a process group
    of its own; its output goes to ``<log_dir>/<name>.log``."""

    def __init__(
        self,
        database_url: str,
        *,
        name: str = "serve",
        env: dict[str, str] | None = None,
        workers: int = 1,
        log_dir: Path | None = None,
    ) -> None:
        self.name, self.workers = name, workers
        self.port = free_port()
        self.log_dir = log_dir or Path(tempfile.mkdtemp(prefix="scimledger-faults-"))
        self.env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMLEDGER_")}
        self.env.update(
            DATABASE_URL=database_url,
            SCIMLEDGER_HOME=str(self.log_dir / f"{name}-home"),
            SCIMLEDGER_MASTER_KEY=MASTER_KEY,  # servers on one database share it (README "Erasure")
            SCIMLEDGER_RATE_LIMIT="0",
            SCIMLEDGER_AUTH_FAILURE_LIMIT="0",
            **(env or {}),
        )
        self.proc: subprocess.Popen[bytes] | None = None
        self.starts = 0

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def log(self) -> Path:
        return self.log_dir / f"{self.name}.log"

    @property
    def running(self) -> bool:
        return self.proc is not None and self.proc.poll() is None

    def start(self) -> float:
        """Start (again, on the same port) and wait until it answers; returns the seconds that took."""
        started = time.monotonic()
        self.launch()
        self.wait_ready()
        return time.monotonic() - started

    def launch(self) -> None:
        """Start the process and return at once (its lifespan, and the catch-up runner, start meanwhile)."""
        self.starts += 1
        with self.log.open("ab") as out:
            self.proc = subprocess.Popen(
                [*CLI, "serve", "--port", str(self.port), "--workers", str(self.workers)],
                env=self.env,
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                start_new_session=True,
            )

    def wait_ready(self) -> None:
        assert self.proc is not None
        deadline = time.monotonic() + STARTUP_SECONDS
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"{self.url}/scim/v2/ServiceProviderConfig", timeout=1).status_code == 200:
                    return
            if self.proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(
                    f"{self.name} did not start; see {self.log}:\n{self.log.read_text()[-3000:]}"
                )
            time.sleep(0.05)

    def kill(self) -> None:
        """SIGKILL to the whole process group (the server and its workers): no shutdown of any kind."""
        if self.proc is None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGKILL)
        self.proc.wait()

    def stop(self) -> None:
        """SIGTERM (a graceful shutdown), SIGKILL after 15 s."""
        if self.proc is None or self.proc.poll() is not None:
            return
        with contextlib.suppress(ProcessLookupError):
            os.killpg(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.kill()
        with contextlib.suppress(ProcessLookupError):  # stray workers
            os.killpg(self.proc.pid, signal.SIGKILL)
