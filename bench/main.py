"""``make bench`` / ``make bench-quick``: scimledger against baselines measured in the same run, one table.

1. A fresh embedded PostgreSQL (or ``DATABASE_URL``, a database for the benchmark alone: it is seeded and
   its queued notifications are skipped, see ``seeding.settle``). Seeding with fsync off, through the real
   handlers in two processes (``seeding.py``): the look-up workspace (``lookup_members`` members and empty
   groups), 20 mix workspaces (members and groups), and fresh workspaces for the create runs; then
   PostgreSQL is restarted with fsync and synchronous_commit on for the measurements.
2. For 1 and 2 uvicorn workers (``--quick``: 1): the ceilings, then every workload against
   ``scimledger serve`` (``workloads.py``); then the peer ``scim2-server`` with one worker.
3. One table (``report.py``) printed and written to ``bench/results/``: ``<UTC time>.json`` and
   ``latest.json`` (every measurement: req/s, latency percentiles, statuses, errors, CPU split),
   ``latest.md`` (the table in Markdown) and PNG plots (``plots.py``).

The servers run with ``SCIMLEDGER_RATE_LIMIT=0`` (the rate limiter is per token). ``scimledger serve``
connects as the least-privilege ``scimledger_app`` role, as it does by default, and so do the ceilings.
Exit code 0 unless a measurement broke (a missed target is a FAIL in the table, not an exit code).
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import multiprocessing
import os
import shutil
import sys
import tempfile
import time
from concurrent.futures import ProcessPoolExecutor
from pathlib import Path
from typing import Any

import harness
import plots
import report
import seeding
import workloads
from pools import Workspace
from workloads import Profile

from scimledger import pg

RESULTS = harness.BENCH / "results"


def seed(url: str, p: Profile, tag: str) -> dict[str, Any]:
    """The workspaces (in-process), filled in two processes at once; then ``seeding.settle``."""
    started = time.monotonic()

    async def make(store: Any) -> dict[str, Any]:
        async def ws(name: str, domain: str) -> Workspace:
            return await seeding.make_workspace(store, name, f"{domain}.{tag}")

        return {
            "big": await ws("bench look-ups", "big"),
            "mix": [await ws(f"bench mix {i:02d}", f"mix{i:02d}") for i in range(1, p.mix_workspaces + 1)],
            "one": {w: await ws(f"bench one {w}w", f"one{w}") for w in p.workers},
            "spread": {
                w: [await ws(f"bench spread {w}w {i:02d}", f"spread{w}-{i:02d}") for i in range(1, 21)]
                for w in p.workers
            },
        }

    made = seeding.with_store(url, make)
    seeding.say(
        f"seeding through the handlers: {p.lookup_members:,} members in one workspace, "
        f"{p.mix_workspaces} x {p.mix_users:,} in the mix workspaces ..."
    )
    with ProcessPoolExecutor(max_workers=2, mp_context=multiprocessing.get_context("spawn")) as ex:
        big = ex.submit(seeding.fill_all, url, [(made["big"], p.lookup_members, p.big_groups, 0)])
        jobs = [(ws, p.mix_users, p.mix_groups, p.group_members) for ws in made["mix"]]
        mix = ex.submit(seeding.fill_all, url, jobs)
        made["big"], made["mix"] = big.result()[0], mix.result()
    members = time.monotonic() - started
    seeding.say(f"seeded in {members:.0f} s; settling ...")
    made["seeding"] = {
        "how": "in-process through the real handlers (provision_user, create_team), 2 processes, fsync off",
        "members_s": round(members, 1),
        **asyncio.run(seeding.settle(url)),
        "seconds": round(time.monotonic() - started, 1),
    }
    return made


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="scimledger against its baselines, one table")
    parser.add_argument("--quick", action="store_true", help="short runs, 1 worker, smaller seeding")
    opts = parser.parse_args(argv)
    p = workloads.QUICK if opts.quick else workloads.FULL
    if workloads.shortfall(p):
        sys.exit(f"bench: profile {p.name} is too small: " + "; ".join(workloads.shortfall(p)))
    began = time.monotonic()
    wrk = harness.ensure_wrk()
    started = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ")
    stamp = started.replace(":", "").replace("-", "")
    home = Path(tempfile.mkdtemp(prefix="scimledger-bench-"))
    home.chmod(0o755)  # as root PostgreSQL runs as 'postgres' and must reach its data directory in here
    # The seeding (this process and its workers) writes personal data with the master key under this home,
    # the one the servers under test read it with.
    os.environ["SCIMLEDGER_HOME"] = str(home)
    external = os.environ.get("DATABASE_URL")
    embedded = None
    try:
        if external:
            owner = app = external
            database, tag = "DATABASE_URL", f"r{int(time.time())}.bench.test"  # new to that database
        else:
            embedded = pg.ensure_server(home, fsync=False)
            owner, database, tag = embedded.url(), "fresh embedded PostgreSQL", "bench.test"
        seeding.say(f"code {harness.code_version()}; profile {p.name}; {database}")
        made = seed(owner, p, tag)
        if embedded is not None:  # the measurements with fsync on
            pg.stop_server(embedded)
            embedded = pg.ensure_server(home, fsync=True)
            owner, app = embedded.url(), embedded.app_url()
        fsync = harness.sql(
            owner, "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')"
        )
        role = None if external else pg.APP_ROLE
        read_rows = asyncio.run(seeding.prepare_ceilings(owner, made["big"], role))
        base_env = {**os.environ, "SCIMLEDGER_HOME": str(home), "SCIMLEDGER_RATE_LIMIT": "0"}
        env = {**base_env, "DATABASE_URL": app, "SCIMLEDGER_MIGRATE_URL": owner}
        b = workloads.Bench(
            profile=p,
            wrk=wrk,
            home=home,
            env=env,
            ceiling_env={**base_env, "DATABASE_URL": app},
            pg_pid=embedded.pid if embedded else None,  # a DATABASE_URL server's CPU is not measured
            big=made["big"],
            mix=made["mix"],
            one=made["one"],
            spread=made["spread"],
            began=began,
        )
        for w in p.workers:
            workloads.ceilings(b, w)
            workloads.ours(b, w)
        peer = workloads.peer(b)
    finally:
        if embedded is not None:
            pg.stop_server(embedded)
        shutil.rmtree(home, ignore_errors=True)
    broke = any("error" in m for m in b.measurements.values())
    rows = report.rows_for(report.comparisons(p.workers, p.lookup_members, p.peer_users), b.measurements)
    noisy = [
        k
        for k, m in b.measurements.items()
        if m.get("cpu_percent", {}).get("other", 0) > harness.OTHER_CPU_WARN
    ]
    meta = {
        "started": started,
        "code": harness.code_version(),
        "profile": p.name,
        "database": database,
        "fsync_synchronous_commit": fsync,
        "loadgen": f"{harness.wrk_version(wrk)}, 1 thread, replay.lua",
        "connections": p.connections,
        "seconds_per_run": p.seconds,
        "warmup_per_run": p.warmup,
        "cores": os.cpu_count(),
        "seconds": round(time.monotonic() - began, 1),
        "noisy": noisy,  # measurements during which processes not ours used more than OTHER_CPU_WARN
    }
    document = {
        **meta,
        "settings": dict(p.__dict__),
        "seeding": {**made["seeding"], "read_ceiling_rows": read_rows, "peer": peer},
        "rows": rows,
        "measurements": b.measurements,
    }
    text = report.table(rows)
    print("\n" + text)
    if noisy:
        print(
            f"\nwarning: processes not ours used > {harness.OTHER_CPU_WARN}% CPU during: " + ", ".join(noisy)
        )
    written = report.write(RESULTS, stamp, document, report.markdown(rows, meta))
    written += plots.draw(rows, RESULTS, stamp, f"{meta['code']}, {p.name}, {meta['cores']} cores")
    print("\nwrote " + ", ".join(str(x.relative_to(harness.ROOT)) for x in written))
    print(f"bench: done in {meta['seconds']:.0f} s")
    return 1 if broke else 0


if __name__ == "__main__":
    sys.exit(main())
