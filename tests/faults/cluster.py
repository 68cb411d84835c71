"""The fault suite's PostgreSQL: an embedded server of its own (fsync on: an immediate stop must lose nothing
committed), which a scenario may stop with SIGQUIT (``pg_ctl stop -m immediate``) and start again on the
same port, and one fresh database per scenario, migrated, with workspaces made by the operator's path."""

from __future__ import annotations

import asyncio
import functools
import os
import shutil
import signal
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from pathlib import Path
from uuid import uuid4

import asyncpg

from scimledger import handlers, pg
from scimledger.app import build_store
from scimledger.store.event_store import Metadata

OPERATOR = Metadata(actor_kind="operator", actor_id="faults", actor_name="fault suite", source="system")


@dataclass(frozen=True)
class Creds:
    """A workspace of the run and its read-write SCIM token."""

    id: str
    token: str

    @property
    def auth(self) -> dict[str, str]:
        return {"Authorization": f"Bearer {self.token}"}


class Cluster:
    """Use as a context manager: the server runs from enter to exit."""

    def __init__(self) -> None:
        self.home = Path(tempfile.mkdtemp(prefix="scimledger-faults-pg-"))
        self.home.chmod(0o755)
        self.server: pg.EmbeddedServer | None = None
        # PostgreSQL gets SIGTERM when the *thread* that started it ends (PR_SET_PDEATHSIG): restarts run on
        # one thread that lives as long as the cluster, not on a short-lived worker of asyncio.to_thread.
        self._starter = ThreadPoolExecutor(max_workers=1, thread_name_prefix="faults-pg")

    def __enter__(self) -> Cluster:
        self.server = pg.ensure_server(self.home)
        return self

    def __exit__(self, *_: object) -> None:
        if self.server is not None:
            found = pg.ensure_server(self.home, port=self.server.port)
            pg.stop_server(found)
            shutil.rmtree(found.data_dir, ignore_errors=True)
        self._starter.shutdown()
        shutil.rmtree(self.home, ignore_errors=True)

    @property
    def running(self) -> pg.EmbeddedServer:
        assert self.server is not None, "the cluster is not started"
        return self.server

    async def new_database(self) -> tuple[str, str]:
        """A fresh, migrated database: (owner URL, least-privilege app URL)."""
        name = f"faults_{uuid4().hex[:12]}"
        conn = await asyncpg.connect(self.running.url("postgres"))
        try:
            await conn.execute(f'CREATE DATABASE "{name}"')
        finally:
            await conn.close()
        owner = self.running.url(name)
        conn = await asyncpg.connect(owner)
        try:
            await pg.migrate(conn)
        finally:
            await conn.close()
        return owner, self.running.app_url(name)

    def stop_immediately(self) -> None:
        """SIGQUIT to the postmaster: no shutdown checkpoint, every connection cut."""
        os.kill(self.running.pid, signal.SIGQUIT)
        deadline = time.monotonic() + 30
        while (self.running.data_dir / "postmaster.pid").exists() and time.monotonic() < deadline:
            time.sleep(0.02)
        child = pg._CHILDREN.pop(self.running.pid, None)  # reap it (pg keeps the servers it started)
        if child is not None:
            child.wait(timeout=30)

    async def start_again(self) -> None:
        start = functools.partial(pg.ensure_server, self.home, port=self.running.port)
        self.server = await asyncio.get_running_loop().run_in_executor(self._starter, start)


async def make_workspaces(owner_url: str, count: int) -> list[Creds]:
    """``count`` workspaces with the verified domain example.com and plenty of seats, each with a token."""
    pool = await pg.create_pool(owner_url, min_size=1, max_size=2)
    try:
        store, made = build_store(pool), []
        for n in range(count):
            command = handlers.CreateWorkspace(
                name=f"faults-{n}", domains=("example.com",), seats=100_000, automatic_seat_assignment=True
            )
            created = await handlers.create_workspace(store, command, OPERATOR)
            token = await handlers.issue_token(
                store, handlers.IssueToken(workspace_id=created.workspace_id, name="fault suite"), OPERATOR
            )
            made.append(Creds(str(created.workspace_id), token.token))
        return made
    finally:
        await pool.close()
