"""Big teams (issue 9, "What to build" 3): the default 200 response to a member PATCH on a team of 100,000.

Seeds (in a child process, through the real handlers: ``provision_user``, ``create_team``, ``patch_team`` in
batches of 5,000) a workspace with ``--members`` users, a team of all of them and a team of 100, in the
database ``scimledger_big_team`` (kept between runs and reused: ``--fresh`` seeds again). Then, in-process
with httpx on the real ASGI app, alternating, ``--adds`` times each:

- ``big``: ``PATCH /Groups/{big}`` adding one new member, default response (the whole Group and members);
- ``big write``: the same with ``?excludedAttributes=members`` (the handler's cost, which must stay O(1));
- ``big projected``: the same with ``?excludedAttributes=externalId`` (attribute selection: still
  loads and projects the members one by one);
- ``small``: the same on the team of 100;
- ``ceiling``: one SELECT of the big team's member rows (value, display) plus ``orjson.dumps`` of the same
  document (the members rendered with ``$ref`` and ``type`` as the response carries them);
- ``legacy``: the rendering path before this change (``views.members_for_groups`` + ``scim_groups.render`` +
  ``orjson.dumps``), in-process, so the before/after ratio comes from the same run.

The process's peak RSS while serving the big responses is read from ``/proc/self/status`` (VmHWM, reset first
through ``/proc/self/clear_refs``). Target: big / ceiling <= 2 and peak RSS < 300 MB. ``DATABASE_URL`` names
the server (any database on it); without it an embedded PostgreSQL is started in a temporary directory.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import shutil
import statistics
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit, urlunsplit
from uuid import UUID

import asyncpg
import httpx
import orjson
import seeding as queries  # bench/seeding.py: seeding through the real handlers

from scimledger import handlers, pg, views
from scimledger.api import scim_groups
from scimledger.app import create_app
from scimledger.config import Settings
from scimledger.store.event_store import EventStore, Metadata

DATABASE = "scimledger_big_team"
DOMAIN = "bigteam.test"
BASE = "https://scim.example.test"
CHUNK = 5_000
SMALL = 100
RATIO_MAX, RSS_MAX_MB = 2.0, 300.0
OPERATOR = Metadata(actor_kind="system", actor_id="bench", actor_name="bench", source="system")


def say(text: str) -> None:
    print(f"big_team: {text}", flush=True)


def with_database(url: str, name: str) -> str:
    parts = urlsplit(url)
    return urlunsplit((parts.scheme, parts.netloc, f"/{name}", parts.query, parts.fragment))


async def prepare_database(server_url: str, fresh: bool) -> bool:
    """Creates the bench database from schema.sql when missing (or ``fresh``); True when it was created."""
    conn = await asyncpg.connect(server_url)
    try:
        exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DATABASE)
        if exists and not fresh:
            return False
        await conn.execute(f'DROP DATABASE IF EXISTS "{DATABASE}" WITH (FORCE)')
        await conn.execute(f'CREATE DATABASE "{DATABASE}"')
    finally:
        await conn.close()
    db = await asyncpg.connect(with_database(server_url, DATABASE))
    try:
        await db.execute(pg.schema_sql())
    finally:
        await db.close()
    return True


def seed(url: str, members: int) -> None:
    """Child process: the workspace, ``members`` users, the big team and the small team."""

    async def work(store: EventStore) -> None:
        created = await handlers.create_workspace(
            store,
            handlers.CreateWorkspace(name="big team bench", domains=(DOMAIN,), seats=members + 10_000),
            OPERATOR,
        )
        wid, meta = created.workspace_id, queries.seed_metadata("bench")
        ids, seconds = await queries.provision(store, wid, meta, DOMAIN, range(1, members + 1), "users")
        say(f"  {len(ids):,} users in {seconds:.0f} s")
        started = time.monotonic()
        big = await queries.create_team(store, wid, meta, "big team", ids[:CHUNK])
        chunks = [ids[i : i + CHUNK] for i in range(CHUNK, members, CHUNK)]
        await queries.in_parallel(chunks, lambda part: queries.add_members(store, wid, meta, big, part), 2)
        await queries.create_team(store, wid, meta, "small team", ids[:SMALL])
        say(f"  big team of {members:,} in {time.monotonic() - started:.0f} s")
        async with store.pool.acquire() as conn:
            await conn.execute("VACUUM ANALYZE")

    queries.with_store(url, work)


async def find_seeded(pool: asyncpg.Pool) -> tuple[UUID, UUID, UUID, int]:
    rows = await pool.fetch(
        """SELECT g.id, g.workspace_id, g.display_name,
                  (SELECT count(*) FROM scim_group_members m WHERE m.group_id = g.id) AS n
             FROM scim_groups g WHERE g.display_name IN ('big team', 'small team') AND NOT g.archived"""
    )
    teams = {r["display_name"]: r for r in rows}
    big, small = teams["big team"], teams["small team"]
    return big["workspace_id"], big["id"], small["id"], int(big["n"])


def clear_peak_rss() -> None:
    Path("/proc/self/clear_refs").write_text("5")


def rss_mb(field: str) -> float:
    for line in Path("/proc/self/status").read_text().splitlines():
        if line.startswith(field + ":"):
            return int(line.split()[1]) / 1024
    return 0.0


async def timed(work: Callable[[], Awaitable[int]]) -> tuple[float, int]:
    started = time.perf_counter()
    size = await work()
    return time.perf_counter() - started, size


def summary(samples: list[tuple[float, int]]) -> dict[str, Any]:
    ms = sorted(s * 1000 for s, _ in samples)
    return {
        "n": len(ms),
        "p50_ms": round(statistics.median(ms), 1),
        "max_ms": round(ms[-1], 1),
        "bytes": samples[-1][1],
    }


CEILING_SQL = """SELECT u.id, coalesce(m.display, u.display_name, u.user_name) AS display
                   FROM scim_group_members m JOIN scim_users u ON u.id = m.member_id
                  WHERE m.group_id = $1 ORDER BY m.added, u.id"""


async def measure(url: str, adds: int) -> dict[str, Any]:
    app = create_app(
        Settings(home=Path(tempfile.mkdtemp(prefix="big-team-")), public_url=BASE, database_url=url),
        run_lagging=False,
    )
    async with app.router.lifespan_context(app):
        store, pool = app.state.store, app.state.pool
        wid, big, small, size = await find_seeded(pool)
        say(f"big team has {size:,} members")
        token = await handlers.issue_token(
            store, handlers.IssueToken(workspace_id=wid, name="bench"), OPERATOR
        )
        start = 10_000_000 + int(time.time()) % 1_000_000 * 10
        extra, _ = await queries.provision(
            store, wid, queries.seed_metadata("bench"), DOMAIN, range(start, start + 4 * adds + 4), "extra"
        )
        auth = {"Authorization": f"Bearer {token.token}"}
        transport = httpx.ASGITransport(app=app)
        group_row = await views.get_group(pool, wid, big)
        assert group_row is not None
        results: dict[str, list[tuple[float, int]]] = {
            k: [] for k in ("big", "big_write", "big_projected", "small", "ceiling", "legacy")
        }
        peak = 0.0
        async with httpx.AsyncClient(transport=transport, base_url=BASE) as client:

            async def patch(team: UUID, query: str = "") -> int:
                member = extra.pop()
                body = queries.add_members_body([member])
                r = await client.patch(f"/scim/v2/Groups/{team}{query}", json=body, headers=auth)
                if r.status_code != 200:
                    raise AssertionError(f"PATCH {r.status_code}: {r.text[:300]}")
                return len(r.content)

            async def ceiling() -> int:
                rows = await pool.fetch(CEILING_SQL, big)
                doc = {
                    "schemas": ["urn:ietf:params:scim:schemas:core:2.0:Group"],
                    "id": str(big),
                    "displayName": "big team",
                    "members": [
                        {
                            "value": str(r[0]),
                            "display": r[1],
                            "$ref": f"{BASE}/scim/v2/Users/{r[0]}",
                            "type": "User",
                        }
                        for r in rows
                    ],
                    "meta": {"resourceType": "Group", "location": f"{BASE}/scim/v2/Groups/{big}"},
                }
                return len(orjson.dumps(doc))

            async def legacy() -> int:
                row = await views.get_group(pool, wid, big)
                assert row is not None
                members = (await views.members_for_groups(pool, [big])).get(big, [])
                return len(orjson.dumps(scim_groups.render(row, members, f"{BASE}/scim/v2")))

            await patch(big)  # warm-up
            await ceiling()
            for _ in range(adds):
                clear_peak_rss()
                results["big"].append(await timed(lambda: patch(big)))
                peak = max(peak, rss_mb("VmHWM"))
                results["big_write"].append(await timed(lambda: patch(big, "?excludedAttributes=members")))
                results["big_projected"].append(
                    await timed(lambda: patch(big, "?excludedAttributes=externalId"))
                )
                results["small"].append(await timed(lambda: patch(small)))
                results["ceiling"].append(await timed(ceiling))
                results["legacy"].append(await timed(legacy))
            row = await views.get_group(pool, wid, big)
            assert row is not None
            loaded = (await views.members_for_groups(pool, [big])).get(big, [])
            expected = orjson.dumps(scim_groups.render(row, loaded, f"{BASE}/scim/v2"))
            got = await client.get(f"/scim/v2/Groups/{big}", headers=auth)
            identical = got.content == expected
        out: dict[str, Any] = {k: summary(v) for k, v in results.items()}
        out["identical_to_legacy_bytes"] = identical
        out["members"] = size
        out["peak_rss_mb"] = round(peak, 1)
        return out


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--members", type=int, default=100_000)
    parser.add_argument("--adds", type=int, default=7)
    parser.add_argument("--fresh", action="store_true", help="seed again even if the database exists")
    opts = parser.parse_args()
    home: Path | None = None
    server: pg.EmbeddedServer | None = None
    external = os.environ.get("DATABASE_URL")
    if external:
        server_url = with_database(external, "postgres")
    else:
        home = Path(tempfile.mkdtemp(prefix="big-team-pg-"))
        server = pg.ensure_server(home, fsync=False)
        server_url = server.url("postgres")
    try:
        url = with_database(server_url, DATABASE)
        if asyncio.run(prepare_database(server_url, opts.fresh)):
            say(f"seeding {opts.members:,} members ...")
            child = multiprocessing.get_context("spawn").Process(target=seed, args=(url, opts.members))
            child.start()
            child.join()
            if child.exitcode != 0:
                say("seeding failed")
                return 1
        r = asyncio.run(measure(url, opts.adds))
    finally:
        if server is not None and home is not None:
            pg.stop_server(server)
            shutil.rmtree(home, ignore_errors=True)
    for k in ("big", "big_write", "big_projected", "small", "ceiling", "legacy"):
        say(f"{k:10} p50 {r[k]['p50_ms']:8.1f} ms  max {r[k]['max_ms']:8.1f} ms  {r[k]['bytes']:>12,} bytes")
    ratio = r["big"]["p50_ms"] / r["ceiling"]["p50_ms"]
    legacy_ratio = r["legacy"]["p50_ms"] / r["ceiling"]["p50_ms"]
    before = (r["big_write"]["p50_ms"] + r["legacy"]["p50_ms"]) / r["ceiling"]["p50_ms"]
    say(f"GET body identical to the legacy rendering: {r['identical_to_legacy_bytes']}")
    say(
        f"members {r['members']:,}; big/small {r['big']['p50_ms'] / r['small']['p50_ms']:.1f}x; "
        f"big-write/small {r['big_write']['p50_ms'] / r['small']['p50_ms']:.2f}x"
    )
    say(
        f"default PATCH / ceiling: {ratio:.2f} (target <= {RATIO_MAX}); legacy render alone / ceiling: "
        f"{legacy_ratio:.2f}; before (write + legacy render) / ceiling: {before:.2f}"
    )
    say(f"peak RSS {r['peak_rss_mb']:.0f} MB (target < {RSS_MAX_MB:.0f})")
    print(orjson.dumps(r, option=orjson.OPT_INDENT_2).decode())
    ok = ratio <= RATIO_MAX and r["peak_rss_mb"] < RSS_MAX_MB and r["identical_to_legacy_bytes"]
    return 0 if ok else 2


if __name__ == "__main__":
    sys.exit(main())
