"""Appends of different workspaces in parallel (issue 9, "Tenants in parallel"), below HTTP: N connections
each append one provisioning-sized batch (2 events) per transaction, all into one workspace or spread over
20, for a fixed time, against the same PostgreSQL. Before issue 9 every append took one global lock, so
spreading gained nothing; now only appends of one workspace take turns. Prints commits/s for both and the
ratio spread/one. Usage: python bench/appends.py [--seconds 10] [--connections 16]
(DATABASE_URL, or a fresh embedded PostgreSQL with fsync on)."""

from __future__ import annotations

import argparse
import asyncio
import os
import tempfile
import time
from pathlib import Path
from uuid import UUID, uuid4

import asyncpg
from eventsourcing.persistence import StoredEvent

from scimledger import pg
from scimledger.store import recorder

METADATA = {"actor": {"kind": "system", "id": "bench", "name": "bench"}, "source": "system"}


async def run(url: str, workspaces: list[UUID], seconds: float, connections: int) -> float:
    pool = await pg.create_pool(url, min_size=connections, max_size=connections)
    done = 0
    stop = time.monotonic() + seconds

    async def worker(n: int) -> None:
        nonlocal done
        async with pool.acquire() as conn:
            while time.monotonic() < stop:
                workspace = workspaces[(n + done) % len(workspaces)]
                events = [StoredEvent(uuid4(), 1, "BenchEvent", b"{}") for _ in range(2)]
                async with conn.transaction():
                    await recorder.append(conn, workspace, events, METADATA)
                done += 1

    started = time.monotonic()
    await asyncio.gather(*(worker(n) for n in range(connections)))
    elapsed = time.monotonic() - started
    await pool.close()
    return done / elapsed


async def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--seconds", type=float, default=10)
    parser.add_argument("--connections", type=int, default=16)
    args = parser.parse_args()
    url = os.environ.get("DATABASE_URL")
    server = None
    if not url:
        server = pg.ensure_server(Path(tempfile.mkdtemp(prefix="scimledger-bench-appends-")), fsync=True)
        url = server.url("postgres")
    try:
        admin = await asyncpg.connect(url)
        name = f"bench_appends_{uuid4().hex[:8]}"
        await admin.execute(f'CREATE DATABASE "{name}"')
        db = url.rsplit("/", 1)[0] + f"/{name}"
        conn = await asyncpg.connect(db)
        await pg.migrate(conn)
        await conn.close()
        one = await run(db, [uuid4()], args.seconds, args.connections)
        spread = await run(db, [uuid4() for _ in range(20)], args.seconds, args.connections)
        print(f"one workspace: {one:,.0f} commits/s; 20 workspaces: {spread:,.0f} commits/s")
        print(f"ratio 20 workspaces / one: {spread / one:.2f}")
        await admin.execute(f'DROP DATABASE "{name}" WITH (FORCE)')
        await admin.close()
    finally:
        if server is not None:
            pg.stop_server(server)


if __name__ == "__main__":
    asyncio.run(main())
