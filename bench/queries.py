"""``make bench`` (after ``bench/run.py``): reads and team changes at size (issue 3), each against a baseline.

1. Look-up by userName in a workspace of 100,000 members: ``GET /scim/v2/Users?filter=userName eq "<random
   existing user>"`` (wrk, ``lookup_users.lua``, 16 connections) against the machine's ceiling for a read,
   ``bench/read_ceiling_app.py`` (one indexed SELECT by a text key on a 100,000-row table, same PostgreSQL,
   same pool settings), with the same load, connections and request count; 1 uvicorn worker (2 workers at
   the end, when time allows). Target: req/s ratio >= 0.6 and p99 < 20 ms (the 1-worker run decides).
2. Adding one member to a team of 100,000 vs a team of 100: ``PATCH /scim/v2/Groups/{id}`` with one
   ``add members`` operation, sequentially on one connection, alternating big and small (each add a member
   not yet in the team). Target: median big/small <= 1.5. Measured with ``?excludedAttributes=members``
   (the handler's cost), then as a client sends it (the 200 response carries the whole Group, members
   included; time-capped by ``--add-seconds``).
3. ``GET /scim/v2/Groups?excludedAttributes=members`` with 1,000 teams of 1,000 members: 50 sequential
   requests; target p99 < 100 ms. The default page (with members) is reported for context.

Seeding goes through the real handlers in-process (``provision_user``, ``create_team``, ``patch_team``: the
events, the inline projections, the hash chain, group commit), in worker processes: no read-model row is
written directly. The lagging outbox projection is caught up and delivered afterwards (what the server's
runner would have done during the writes), then the tables are vacuumed/analyzed and a checkpoint is taken,
so that the measurements do not run behind background work. The database is a fresh embedded PostgreSQL
with fsync on (or ``DATABASE_URL`` when set). When a target is missed and time allows, py-spy records the
server during more of the same load and the hot spots are printed. Results go to
``bench/results/queries-<UTC time>.json`` and ``bench/results/queries-latest.json``. The whole run is bounded
(``--budget``, default 690 s); a part that would not fit is skipped and reported as such. Exit code 0
unless something broke. Options: ``--requests``, ``--users``, ``--teams``, ``--team-size``, ``--adds``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import dataclasses
import datetime as dt
import http.client
import json
import multiprocessing
import os
import re
import resource
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Awaitable, Callable, Iterator, Sequence
from concurrent.futures import Future, ProcessPoolExecutor
from pathlib import Path
from typing import Any, TypeVar
from urllib.parse import quote, urlsplit
from uuid import UUID

import asyncpg
import orjson
import run  # bench/run.py: servers on free ports, wrk, CPU accounting, the CLI

from scimledger import handlers, pg
from scimledger.app import build_store
from scimledger.scim.patch import PATCH_OP_SCHEMA, validate_patch_request
from scimledger.scim.schemas import GROUP_URN
from scimledger.scim.users import UserInput, group_from_body, user_from_body
from scimledger.store.event_store import EventStore, Metadata

BENCH, ROOT, BIN = run.BENCH, run.ROOT, run.BIN
CONNECTIONS = 16
LOOKUP_RATIO_MIN, LOOKUP_P99_MS = 0.6, 20.0
ADD_RATIO_MAX = 1.5
GROUPS_P99_MS = 100.0
SEED_SHARE = 0.55  # of the budget: no new team is started after that (the size is then reported as reduced)
PROFILE_SECONDS = 10
PROFILE_ADDS = 600  # extra members kept for the adds that run while py-spy records
T = TypeVar("T")


def remaining(deadline: float) -> float:
    return deadline - time.monotonic()


def say(text: str) -> None:
    print(f"queries: {text}", flush=True)


# --- seeding (worker processes; the real handlers) ----------------------------------------------------------
USER_SENTINEL = 987654321


def user_body(n: int, domain: str) -> dict[str, Any]:
    """The body ``post_users.lua`` POSTs, for ``user-<n>@<domain>``."""
    name = f"user-{n}@{domain}"
    return {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:User"],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": f"User {n}"},
        "displayName": f"Bench User {n}",
        "emails": [{"value": name, "type": "work", "primary": True}],
        "title": "Load test",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "active": True,
    }


class UserInputs:
    """``user_from_body(user_body(n))`` without re-parsing each body: the parsed template with n substituted
    (checked equal to the real parse for a few n)."""

    def __init__(self, domain: str) -> None:
        self.template = user_from_body(user_body(USER_SENTINEL, domain))
        self.profile = orjson.dumps(self.template.profile).decode()
        for n in (1, 42, 100_000, 1_234_567):
            if self(n) != user_from_body(user_body(n, domain)):
                raise AssertionError("the user template does not parse like the body")

    def __call__(self, n: int) -> UserInput:
        profile = orjson.loads(self.profile.replace(str(USER_SENTINEL), str(n)))
        name = self.template.user_name.replace(str(USER_SENTINEL), str(n))
        return dataclasses.replace(self.template, user_name=name, profile=profile)


def seed_metadata(token_id: str) -> Metadata:
    """What ``scim_metadata`` records for a request with the bench token."""
    return Metadata(
        actor_kind="token",
        actor_id=token_id,
        actor_name="bench",
        source="scim",
        user_agent="bench/queries.py (seeding)",
        client_addr="127.0.0.1",
    )


async def in_parallel(items: Sequence[Any], work: Callable[[Any], Awaitable[T]], concurrency: int) -> list[T]:
    """``work`` on every item, at most ``concurrency`` at a time; results in order."""
    results: list[Any] = [None] * len(items)
    todo = iter(enumerate(items))

    async def worker() -> None:
        for i, item in todo:
            results[i] = await work(item)

    await asyncio.gather(*(worker() for _ in range(concurrency)))
    return results


async def provision(
    store: EventStore, ws: UUID, meta: Metadata, domain: str, numbers: range, label: str
) -> tuple[list[str], float]:
    """POST /Users for each n through ``handlers.provision_user`` (group commit on the workspace)."""
    make = UserInputs(domain)
    started, done = time.monotonic(), 0

    async def one(n: int) -> str:
        nonlocal done
        user = make(n)
        result = await handlers.provision_user(
            store, handlers.ProvisionUser(ws, user.user_name, user.profile, user.active), meta
        )
        if not result.new or result.member.status != "active":
            raise AssertionError(f"{user.user_name} was not provisioned as an active member")
        done += 1
        if done % 25_000 == 0:
            seconds = time.monotonic() - started
            say(f"  {label}: {done:,} users in {seconds:.0f} s ({done / seconds:,.0f}/s)")
        return str(result.member.id)

    ids = await in_parallel(numbers, one, 100)
    return ids, time.monotonic() - started


def group_body(name: str, member_ids: Sequence[str]) -> dict[str, Any]:
    return {"schemas": [GROUP_URN], "displayName": name, "members": [{"value": m} for m in member_ids]}


def add_members_body(member_ids: Sequence[str]) -> dict[str, Any]:
    value = [{"value": m} for m in member_ids]
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": value}]}


async def create_team(store: EventStore, ws: UUID, meta: Metadata, name: str, members: Sequence[str]) -> UUID:
    """POST /Groups with members, through ``handlers.create_team``."""
    command = handlers.CreateTeam(ws, group_from_body(group_body(name, members)))
    return await handlers.create_team(store, command, meta)


async def add_members(
    store: EventStore, ws: UUID, meta: Metadata, team: UUID, members: Sequence[str]
) -> None:
    """PATCH /Groups/{id} adding members, through ``handlers.patch_team``."""
    operations = validate_patch_request(add_members_body(members))
    await handlers.patch_team(store, handlers.PatchTeam(ws, team, operations), meta)


async def drain_outbox(pool: asyncpg.Pool) -> tuple[int, float]:
    """What the server's catch-up runner does after writes: apply the outbox, deliver it (log sender)."""
    from projections.runner import catch_up
    from scimledger.notifications import LogSender, deliver_pending

    started, sent = time.monotonic(), 0
    await catch_up(pool)
    while (n := await deliver_pending(pool, LogSender())) > 0:
        sent += n
    return sent, time.monotonic() - started


def with_store(url: str, work: Callable[[EventStore], Awaitable[T]]) -> T:
    async def main() -> T:
        pool = await pg.create_pool(url)
        try:
            return await work(build_store(pool))
        finally:
            await pool.close()

    return asyncio.run(main())


def seed_lookup_workspace(
    url: str, ws: str, token_id: str, domain: str, users: int, extra: int, small: int, chunk: int
) -> dict[str, Any]:
    """Workspace A: ``users`` + ``extra`` members (user-1 ..), the big team (user-1 .. user-<users>, added in
    PATCHes of ``chunk``) and the small team (user-1 .. user-<small>); the extra members are for the adds."""

    async def work(store: EventStore) -> dict[str, Any]:
        wid, meta = UUID(ws), seed_metadata(token_id)
        ids, seconds = await provision(
            store, wid, meta, domain, range(1, users + extra + 1), "lookup workspace"
        )
        say(f"  lookup workspace: {len(ids):,} users in {seconds:.0f} s ({len(ids) / seconds:,.0f}/s)")
        sent, outbox_seconds = await drain_outbox(store.pool)
        say(f"  outbox caught up: {sent:,} notifications delivered in {outbox_seconds:.0f} s")
        started = time.monotonic()
        big = await create_team(store, wid, meta, "big team", ids[:chunk])
        chunks = [ids[i : i + chunk] for i in range(chunk, users, chunk)]
        await in_parallel(chunks, lambda part: add_members(store, wid, meta, big, part), 2)
        big_seconds = time.monotonic() - started
        say(f"  big team: {users:,} members in {big_seconds:.0f} s ({users / big_seconds:,.0f}/s)")
        small_team = await create_team(store, wid, meta, "small team", ids[:small])
        return {
            "users": len(ids),
            "users_seconds": round(seconds, 1),
            "users_per_second": round(len(ids) / seconds),
            "outbox_delivered": sent,
            "outbox_seconds": round(outbox_seconds, 1),
            "big_team_members": users,
            "big_team_seconds": round(big_seconds, 1),
            "memberships_per_second": round(users / big_seconds),
            "big_team": str(big),
            "small_team": str(small_team),
            "extra_members": ids[users:],
        }

    return with_store(url, work)


def seed_team_users(url: str, ws: str, token_id: str, domain: str, users: int) -> dict[str, Any]:
    """Workspace B's members (the pool the teams draw from)."""

    async def work(store: EventStore) -> dict[str, Any]:
        ids, seconds = await provision(
            store, UUID(ws), seed_metadata(token_id), domain, range(1, users + 1), "B"
        )
        _, outbox_seconds = await drain_outbox(store.pool)
        return {"ids": ids, "seconds": round(seconds, 1), "outbox_seconds": round(outbox_seconds, 1)}

    return with_store(url, work)


def seed_teams(
    url: str, ws: str, token_id: str, members: list[str], numbers: list[int], size: int, stop_at: float
) -> dict[str, Any]:
    """Teams ``team <i>`` of ``size`` members each (a window of the pool), one POST /Groups each; no new team
    is started after ``stop_at`` (time.time())."""

    async def work(store: EventStore) -> dict[str, Any]:
        wid, meta = UUID(ws), seed_metadata(token_id)
        started, made = time.monotonic(), 0

        async def one(i: int) -> None:
            nonlocal made
            if time.time() > stop_at:
                return
            first = (i * 997) % len(members)
            window = [members[(first + k) % len(members)] for k in range(size)]
            await create_team(store, wid, meta, f"team {i:04d}", window)
            made += 1
            if made % 100 == 0:
                seconds = time.monotonic() - started
                say(
                    f"  teams (pid {os.getpid()}): {made} in {seconds:.0f} s "
                    f"({made * size / seconds:,.0f} members/s)"
                )

        await in_parallel(numbers, one, 4)
        return {"teams": made, "seconds": round(time.monotonic() - started, 1), "finished_at": time.time()}

    return with_store(url, work)


def seed(
    url: str, a: dict[str, str], b: dict[str, str], opts: argparse.Namespace, stop_at: float
) -> dict[str, Any]:
    """Both workspaces at once in two processes: A (users, big and small team) in one; B's users, then its
    teams, shared by both processes once A is done."""
    started = time.monotonic()
    extra = 2 * (opts.adds + opts.add_warmup) + PROFILE_ADDS
    ctx = multiprocessing.get_context("spawn")
    with ProcessPoolExecutor(max_workers=2, mp_context=ctx) as pool:
        fa = pool.submit(
            seed_lookup_workspace, url, a["id"], a["token_id"], a["domain"], opts.users, extra, 100, 5000
        )
        b_users = pool.submit(
            seed_team_users, url, b["id"], b["token_id"], b["domain"], opts.team_pool
        ).result()
        say(f"  teams workspace: {opts.team_pool:,} users in {b_users['seconds']:.0f} s")
        numbers = list(range(opts.teams))
        teams_started = time.time()
        parts: list[Future[dict[str, Any]]] = [  # 8 parts: the second process takes some once A is done
            pool.submit(
                seed_teams,
                url,
                b["id"],
                b["token_id"],
                b_users["ids"],
                numbers[k::8],
                opts.team_size,
                stop_at,
            )
            for k in range(8)
        ]
        lookup = fa.result()
        teams = [p.result() for p in parts]
    made = sum(t["teams"] for t in teams)
    teams_seconds = max(t["finished_at"] for t in teams) - teams_started
    return {
        "lookup_workspace": lookup,
        "teams_workspace": {
            "users": opts.team_pool,
            "users_seconds": b_users["seconds"],
            "teams": made,
            "teams_wanted": opts.teams,
            "team_size": opts.team_size,
            "memberships": made * opts.team_size,
            "teams_seconds": round(teams_seconds, 1),
            "memberships_per_second": round(made * opts.team_size / teams_seconds),
            "scaled_down": made < opts.teams,
        },
        "seconds": round(time.monotonic() - started, 1),
    }


async def settle(url: str) -> dict[str, float]:
    """Outbox fully delivered; tables vacuumed and analyzed; a checkpoint: no background work left."""
    conn = await asyncpg.connect(url)
    try:
        pool = await pg.create_pool(url, min_size=1, max_size=2)
        try:
            sent, _ = await drain_outbox(pool)
        finally:
            await pool.close()
        started = time.monotonic()
        for table in ("events", "snapshots", "scim_users", "scim_groups", "scim_group_members", "outbox"):
            await conn.execute(f"VACUUM (ANALYZE) {table}")
        vacuum = time.monotonic() - started
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
        return {
            "outbox_left_delivered": sent,
            "vacuum_analyze_s": round(vacuum, 1),
            "checkpoint_s": round(time.monotonic() - started - vacuum, 1),
        }
    finally:
        await conn.close()


async def fill_read_ceiling(url: str, ws: str, names: list[str]) -> int:
    """The ceiling's table: the userNames and resources of the looked-up members, from the read model."""
    from read_ceiling_app import SCHEMA, TABLE

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}")
        await conn.execute(SCHEMA)
        await conn.execute(
            f"""INSERT INTO {TABLE} (user_name, resource)
                SELECT user_name, resource FROM scim_users WHERE workspace_id = $1 AND user_name = ANY($2)""",
            UUID(ws),
            names,
        )
        await conn.execute(f"VACUUM (ANALYZE) {TABLE}")
        return int(await conn.fetchval(f"SELECT count(*) FROM {TABLE}"))
    finally:
        await conn.close()


# --- measuring ----------------------------------------------------------------------------------------------
def cpu_now(server_pid: int, pg_pid: int | None) -> dict[str, float]:
    """run.cpu_now, with this process's own CPU counted as load generator (the sequential client)."""
    cpu = run.cpu_now(server_pid, pg_pid)
    me = resource.getrusage(resource.RUSAGE_SELF)
    cpu["loadgen"] += me.ru_utime + me.ru_stime
    return cpu


def cpu_percent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, int]:
    """100 = one core busy for the whole run; "other": processes not ours."""
    seconds = max(seconds, 1e-3)
    cpu = {k: round(100 * (after[k] - before[k]) / seconds) for k in before}
    cpu["other"] = cpu.pop("machine") - cpu["loadgen"] - cpu["app"] - cpu["postgres"]
    return cpu


class Lookups:
    """wrk with ``lookup_users.lua``: ``requests`` GETs of random users 1..users, 16 connections."""

    def __init__(self, wrk: str, users: int, pg_pid: int | None) -> None:
        self.wrk, self.users, self.pg_pid = wrk, users, pg_pid

    def args(self, base: str, target: Target, quota: int, seed: int, seconds: int) -> list[str]:
        return [
            self.wrk,
            "-t1",
            f"-c{CONNECTIONS}",
            f"-d{seconds}s",
            "--timeout",
            "30s",
            "-s",
            str(BENCH / "lookup_users.lua"),
            base,
            "--",
            str(quota),
            "1",
            str(self.users),
            str(seed),
            target.prefix,
            target.suffix,
            target.expect,
            *([target.token] if target.token else []),
        ]

    def run(self, base: str, pid: int, target: Target, requests: int, seed: int, cap: int) -> dict[str, Any]:
        before = cpu_now(pid, self.pg_pid)
        output = run.Load._wrk(self.args(base, target, requests, seed, cap))
        after = cpu_now(pid, self.pg_pid)
        line = next((x for x in output if x.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError("wrk printed no result:\n" + "".join(output))
        r: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
        seconds = r["duration_us"] / 1e6
        r["rps"] = round(r["answered"] / seconds, 1)
        r["p50_ms"], r["p90_ms"], r["p99_ms"] = r["p50_us"] / 1000, r["p90_us"] / 1000, r["p99_us"] / 1000
        r["ok"] = r.pop("created")
        r["failed"] = r.pop("non_2xx")  # non-2xx, or a 2xx without the expected user
        r["errors"] = r["failed"] + r["socket_errors"] + r["timeouts"] + (requests - r["answered"])
        r["cpu_percent"] = cpu = cpu_percent(before, after, seconds)
        if r["rps"]:  # CPU time per request, ms: 10 * (% of a core) / (req/s)
            r["app_ms_per_request"] = round(10 * cpu["app"] / r["rps"], 3)
            r["postgres_ms_per_request"] = round(10 * cpu["postgres"] / r["rps"], 3)
        return r

    def measure(self, base: str, pid: int, target: Target, requests: int, warmup: int) -> dict[str, Any]:
        w = self.run(base, pid, target, warmup, 7, 60)
        r = self.run(base, pid, target, requests, 1, 150)
        r["warmup"] = {"requests": warmup, "errors": w["errors"]}
        return r


@dataclasses.dataclass(frozen=True)
class Target:
    prefix: str  # the path up to the user number
    suffix: str
    expect: str  # what a right answer's body contains
    token: str | None


class Client:
    """One keep-alive HTTP/1.1 connection, requests one at a time (what an IdP's sync does). Nagle is off:
    http.client sends a request's headers and body in two writes, which would otherwise wait for the
    server's delayed ACK (~40 ms) and be charged to the server."""

    def __init__(self, base: str, token: str) -> None:
        parts = urlsplit(base)
        self.conn = http.client.HTTPConnection(parts.hostname or "127.0.0.1", parts.port, timeout=120)
        self.conn.connect()
        self.conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.headers = {"Authorization": f"Bearer {token}", "Accept": "application/scim+json"}

    def call(self, method: str, path: str, body: Any = None) -> tuple[int, bytes, float]:
        headers = dict(self.headers)
        data = None
        if body is not None:
            data = orjson.dumps(body)
            headers["Content-Type"] = "application/scim+json"
        started = time.perf_counter()
        self.conn.request(method, path, body=data, headers=headers)
        response = self.conn.getresponse()
        content = response.read()
        return response.status, content, time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def percentile(values: Sequence[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of ``values`` in seconds, as milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return round(ordered[rank - 1] * 1000, 2)


def latency_summary(seconds: Sequence[float]) -> dict[str, Any]:
    return {
        "n": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 2) if seconds else 0.0,
        "p99_ms": percentile(seconds, 99),
        "max_ms": round(max(seconds) * 1000, 2) if seconds else 0.0,
    }


def serve(
    env: dict[str, str], home: Path, workers: int = 1
) -> contextlib.AbstractContextManager[tuple[str, int]]:
    return run.server("scimledger", [str(BIN / "scimledger"), "serve"], env, workers, home)


# --- py-spy -------------------------------------------------------------------------------------------------
def py_spy() -> str | None:
    found = BIN / "py-spy"
    return str(found) if found.exists() else shutil.which("py-spy")


def profile(
    pid: int, name: str, stamp: str, load: Callable[[Callable[[], bool]], None]
) -> dict[str, Any] | None:
    """py-spy (raw) on the server for PROFILE_SECONDS while ``load`` runs (``busy()``: whether to go on)."""
    spy = py_spy()
    if spy is None:
        return None
    out = Path(tempfile.gettempdir()) / f"scimledger-queries-{stamp}-{name}.pyspy.txt"
    command = [spy, "record", "-p", str(pid), "-d", str(PROFILE_SECONDS), "-f", "raw", "-o", str(out)]
    with subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL) as proc:
        time.sleep(0.5)
        load(lambda: proc.poll() is None)
        proc.wait(timeout=60)
    if not out.exists():
        return None
    summary = summarize_profile(out)
    summary["raw"] = str(out)
    return summary


FRAME_LINE = re.compile(r":\d+\)$")


def summarize_profile(path: Path) -> dict[str, Any]:
    """py-spy keeps only samples of a thread on CPU (not idle in epoll; with uvloop a C-level loop shows as
    ``Runner.run``: uvloop/httptools at work). The hottest leaf functions, and the scimledger functions
    (scimledger/, projections/) that most samples pass through."""
    own, through, busy, idle = Counter[str](), Counter[str](), 0, 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit():
            continue
        frames = [FRAME_LINE.sub(")", f) for f in stack.split(";")]
        if "select (selectors.py" in frames[-1]:
            idle += int(count)
            continue
        busy += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            if ("scimledger/" in frame or "projections/" in frame) and "scimledger/cli.py" not in frame:
                through[frame] += int(count)

    def top(counter: Counter[str], n: int) -> list[list[Any]]:
        return [[frame, round(100 * c / busy, 1)] for frame, c in counter.most_common(n)] if busy else []

    return {
        "samples": busy,
        "idle_samples": idle,
        "cpu_percent_sampled": round(busy / PROFILE_SECONDS),  # py-spy samples 100 times a second
        "self_top": top(own, 12),
        "scimledger_inclusive_top": top(through, 18),
    }


# --- diagnostics --------------------------------------------------------------------------------------------
class Explain:
    """Stands in for a connection: runs ``EXPLAIN (ANALYZE, BUFFERS)`` of each query the real code sends,
    keeps the plans and answers nothing (so the SQL is exactly scimledger's)."""

    def __init__(self, conn: asyncpg.Connection) -> None:
        self.conn, self.plans = conn, []

    async def fetch(self, query: str, *args: Any) -> list[Any]:
        rows = await self.conn.fetch("EXPLAIN (ANALYZE, BUFFERS) " + query, *args)
        self.plans.append([r[0] for r in rows])
        return []

    async def fetchval(self, query: str, *args: Any) -> Any:
        await self.fetch(query, *args)
        return 0


def execution_ms(plan: list[str]) -> float | None:
    found = [line for line in plan if line.startswith("Execution Time:")]
    return float(found[0].split()[2]) if found else None


async def explain(url: str, ws: str, user_name: str) -> dict[str, Any]:
    """The plans of the look-up's query (``views.find_users`` as ``run_query`` calls it) and of the outbox
    runner's poll (``recorder.select_log`` from its tracking position), on the seeded data."""
    from projections import outbox
    from scimledger import views
    from scimledger.domain.names import user_name_key
    from scimledger.scim.filter import parse_filter
    from scimledger.scim.filter_sql import compile_filter
    from scimledger.store import recorder

    conn = await asyncpg.connect(url)
    try:
        out: dict[str, Any] = {}
        proxy = Explain(conn)
        args: list[object] = [UUID(ws)]
        where = compile_filter(parse_filter(f'userName eq "{user_name}"'), "User", args, user_name_key)
        for _ in range(2):  # the second run is warm
            proxy.plans.clear()
            await views.find_users(
                proxy,
                where,
                list(args),
                order_by="u.created ASC, u.id ASC",
                limit=100,
                offset=0,
                with_groups=True,
            )
        out["find_users"] = proxy.plans[0]
        after = await conn.fetchval("SELECT position FROM projection_tracking WHERE projection = 'outbox'")
        proxy.plans.clear()
        await recorder.select_log(proxy, after=after or 0, limit=500, event_types=sorted(outbox.event_types))
        out["outbox_poll"] = proxy.plans[0]
        out["outbox_poll_after"] = after
        out["log_head"] = await conn.fetchval("SELECT max(position) FROM events")
        out["outbox_rows"] = await conn.fetchval("SELECT count(*) FROM outbox")
        return out
    finally:
        await conn.close()


def idle_cost(env: dict[str, str], home: Path, pg_pid: int | None, seconds: float = 5) -> dict[str, int]:
    """CPU % an idle ``scimledger serve`` (1 worker) costs: its background runner polls once a second."""
    with serve(env, home) as (_, pid):
        time.sleep(2)
        before = cpu_now(pid, pg_pid)
        time.sleep(seconds)
        return cpu_percent(before, cpu_now(pid, pg_pid), seconds)


# --- the three measurements ---------------------------------------------------------------------------------
def measure_lookups(
    lookups: Lookups,
    env: dict[str, str],
    home: Path,
    a: dict[str, str],
    opts: argparse.Namespace,
    workers: int,
    deadline: float,
    stamp: str,
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """One look-up run (ceiling, then scimledger) with ``workers`` uvicorn workers; py-spy if it fails."""
    domain = quote(f"@{a['domain']}")
    ceiling_target = Target("/lookup?userName=user-", domain, '"userName": "user-', None)
    scim_target = Target(
        "/scim/v2/Users?filter=" + quote('userName eq "user-'),
        domain + quote('"'),
        '"totalResults":1,',
        a["token"],
    )
    say(f"look-ups, {workers} worker(s): ceiling ...")
    ceiling = [str(BIN / "python"), str(BENCH / "read_ceiling_app.py")]
    with run.server("read-ceiling", ceiling, env, workers, home) as (base, pid):
        c = lookups.measure(base, pid, ceiling_target, opts.requests, opts.warmup)
    say(f"look-ups, {workers} worker(s): scimledger ...")
    spied = None
    with serve(env, home, workers) as (base, pid):
        s = lookups.measure(base, pid, scim_target, opts.requests, opts.warmup)
        ratio = s["rps"] / c["rps"] if c["rps"] else 0.0
        ok = ratio >= LOOKUP_RATIO_MIN and s["p99_ms"] < LOOKUP_P99_MS and s["errors"] == 0
        say(f"  ceiling {c['rps']:.0f} req/s, scimledger {s['rps']:.0f} req/s (p99 {s['p99_ms']:.1f} ms)")
        if not ok and workers == 1 and remaining(deadline) > 240:  # (1 worker: py-spy sees the server)
            say("look-up target missed: py-spy on the server ...")

            def load(busy: Callable[[], bool]) -> None:
                while busy():
                    lookups.run(base, pid, scim_target, 2000, 11, 30)

            spied = profile(pid, "lookup", stamp, load)
    return {"workers": workers, "ceiling": c, "scim": s, "ratio": round(ratio, 3), "pass": ok}, spied


def measure_team_adds(
    env: dict[str, str],
    home: Path,
    a: dict[str, str],
    seeded: dict[str, Any],
    opts: argparse.Namespace,
    pg_pid: int | None,
    deadline: float,
    stamp: str,
) -> dict[str, Any]:
    teams = {"big": seeded["big_team"], "small": seeded["small_team"]}
    per_variant = opts.add_warmup + opts.adds
    extras = seeded["extra_members"]  # members in neither team yet: a slice per variant, the rest for py-spy
    reserve: Iterator[str] = iter(extras[2 * per_variant :])
    out: dict[str, Any] = {"variants": {}, "profiles": {}}
    with serve(env, home) as (base, pid):
        client = Client(base, a["token"])
        try:
            variants = (("excludedAttributes=members", "?excludedAttributes=members"), ("full response", ""))
            for k, (name, query) in enumerate(variants):  # the cheap one first: the full one may be cut
                extra = iter(extras[k * per_variant : (k + 1) * per_variant])
                cap = min(opts.add_seconds, remaining(deadline) - 90)
                if cap < 10:
                    say(f"skipping team adds ({name}): not enough time left in the budget")
                    continue
                say(f"team adds ({name}): {opts.add_warmup} + {opts.adds} per team, at most {cap:.0f} s ...")
                latencies: dict[str, list[float]] = {"big": [], "small": []}
                sizes: dict[str, list[int]] = {"big": [], "small": []}
                errors, first_error = 0, ""
                started = time.monotonic()
                before = cpu_now(pid, pg_pid)
                for i in range(opts.add_warmup + opts.adds):
                    if time.monotonic() - started > cap:
                        break
                    member = next(extra, None)
                    if member is None:
                        break
                    for team in ("big", "small"):
                        path = f"/scim/v2/Groups/{teams[team]}{query}"
                        status, body, seconds = client.call("PATCH", path, add_members_body([member]))
                        if status not in (200, 204):
                            errors += 1
                            first_error = first_error or f"{status} {body[:200]!r}"
                        if i >= opts.add_warmup:
                            latencies[team].append(seconds)
                            sizes[team].append(len(body))
                elapsed = time.monotonic() - started
                cpu = cpu_percent(before, cpu_now(pid, pg_pid), elapsed)
                big, small = latency_summary(latencies["big"]), latency_summary(latencies["small"])
                ratio = big["p50_ms"] / small["p50_ms"] if small["p50_ms"] else 0.0
                for team, summary in (("big", big), ("small", small)):
                    summary["response_bytes"] = round(statistics.mean(sizes[team])) if sizes[team] else 0
                out["variants"][name] = {
                    "big": big,
                    "small": small,
                    "ratio_p50": round(ratio, 2),
                    "errors": errors,
                    "first_error": first_error,
                    "cut_short": big["n"] < opts.adds,
                    "cpu_percent": cpu,
                    "pass": ratio <= ADD_RATIO_MAX and errors == 0 and big["n"] > 0,
                }
                say(f"  big p50 {big['p50_ms']} ms, small p50 {small['p50_ms']} ms, ratio {ratio:.2f}")
                if not out["variants"][name]["pass"] and remaining(deadline) > 90:
                    say(f"team add target missed ({name}): py-spy on the server ...")

                    def load(busy: Callable[[], bool], query: str = query) -> None:
                        while busy():
                            member = next(reserve, None)
                            if member is None:
                                return
                            client.call(
                                "PATCH", f"/scim/v2/Groups/{teams['big']}{query}", add_members_body([member])
                            )

                    label = "team-add-excluded" if query else "team-add-full"
                    out["profiles"][name] = profile(pid, label, stamp, load)
        finally:
            client.close()
    return out


def measure_group_lists(
    env: dict[str, str],
    home: Path,
    b: dict[str, str],
    teams: int,
    team_size: int,
    pg_pid: int | None,
    deadline: float,
    stamp: str,
) -> dict[str, Any]:
    out: dict[str, Any] = {"profiles": {}}
    with serve(env, home) as (base, pid):
        client = Client(base, b["token"])
        try:
            for name, path, n, warmup, cap in (
                ("excludedAttributes=members", "/scim/v2/Groups?excludedAttributes=members", 50, 5, 60.0),
                ("default page (with members)", "/scim/v2/Groups", 10, 1, 60.0),
            ):
                cap = min(cap, remaining(deadline) - 60)
                if cap < 5:
                    say(f"skipping GET /Groups ({name}): not enough time left in the budget")
                    continue
                say(f"GET /Groups ({name}): {warmup} + {n} sequential ...")
                latencies, sizes, errors, first_error = [], [], 0, ""
                started = time.monotonic()
                before = cpu_now(pid, pg_pid)
                for i in range(warmup + n):
                    if time.monotonic() - started > cap:
                        break
                    status, body, seconds = client.call("GET", path)
                    problem = check_group_page(status, body, teams, team_size, "members" not in path)
                    if problem:
                        errors += 1
                        first_error = first_error or problem
                    if i >= warmup:
                        latencies.append(seconds)
                        sizes.append(len(body))
                cpu = cpu_percent(before, cpu_now(pid, pg_pid), time.monotonic() - started)
                summary = latency_summary(latencies)
                summary.update(
                    errors=errors,
                    first_error=first_error,
                    response_bytes=round(statistics.mean(sizes)) if sizes else 0,
                    cpu_percent=cpu,
                )
                if "excluded" in name:
                    summary["pass"] = summary["p99_ms"] < GROUPS_P99_MS and errors == 0 and summary["n"] == n
                out[name] = summary
                say(f"  p50 {summary['p50_ms']} ms, p99 {summary['p99_ms']} ms")
                if summary.get("pass") is False and remaining(deadline) > 60:
                    say("GET /Groups target missed: py-spy on the server ...")

                    def load(busy: Callable[[], bool], path: str = path) -> None:
                        while busy():
                            client.call("GET", path)

                    out["profiles"][name] = profile(pid, "groups", stamp, load)
        finally:
            client.close()
    return out


def check_group_page(status: int, body: bytes, teams: int, team_size: int, with_members: bool) -> str:
    """'' when the page is right: 200, the total, 100 groups, members as asked."""
    if status != 200:
        return f"{status} {body[:200]!r}"
    page = orjson.loads(body)
    if page.get("totalResults") != teams or len(page.get("Resources", [])) != min(100, teams):
        return f"totalResults {page.get('totalResults')}, {len(page.get('Resources', []))} resources"
    counts = {len(g.get("members", [])) for g in page["Resources"]}
    if counts != ({team_size} if with_members else {0}):
        return f"member counts per group {sorted(counts)[:5]}"
    return ""


# --- reporting ----------------------------------------------------------------------------------------------
def cpu_text(c: dict[str, int]) -> str:
    return f"{c['loadgen']} / {c['app']} / {c['postgres']} / {c['other']}"


def report(results: dict[str, Any], stamp: str) -> None:
    print(
        f"\n{'measurement':<58}{'req/s':>8}{'p50 ms':>9}{'p99 ms':>9}{'errors':>7}"
        "   CPU % (100 = one core): client / app / postgres / other"
    )
    lookup = results.get("lookup") or {"runs": []}
    for r in lookup["runs"]:
        for label, x in (
            ("(a) ceiling: indexed SELECT", r["ceiling"]),
            ("(b) GET /Users?filter=userName eq", r["scim"]),
        ):
            line = f"1. look-up, {r['workers']}w {label}"
            print(
                f"{line:<58}{x['rps']:>8.0f}{x['p50_ms']:>9.1f}{x['p99_ms']:>9.1f}{x['errors']:>7}"
                f"   {cpu_text(x['cpu_percent'])}"
            )
        s, c = r["scim"], r["ceiling"]
        if "postgres_ms_per_request" in s and "postgres_ms_per_request" in c:
            print(
                f"{'':<4}CPU per look-up: app {c['app_ms_per_request']:.3f} vs "
                f"{s['app_ms_per_request']:.3f} ms, "
                f"PostgreSQL {c['postgres_ms_per_request']:.3f} vs {s['postgres_ms_per_request']:.3f} ms "
                "(ceiling vs scimledger)"
            )
        print(
            f"{'':<4}b/a = {r['ratio']:.2f} (>= {LOOKUP_RATIO_MIN}), p99(b) = {s['p99_ms']:.1f} ms "
            f"(< {LOOKUP_P99_MS:.0f}): {'PASS' if r['pass'] else 'FAIL'}"
            + ("" if r["workers"] == 1 else "  (reported; the 1-worker run decides)")
        )
        for x in (r["ceiling"], s):
            if x["first_error"]:
                print(f"{'':<4}first error: {x['first_error']}")
    adds = results.get("team_adds") or {"variants": {}}
    big_size = results["seeding"]["lookup_workspace"]["big_team_members"]
    for name, v in adds["variants"].items():
        for team, size in (("big", big_size), ("small", 100)):
            x = v[team]
            line = f"2. PATCH +1 member, team of {size:,} ({name})"
            print(
                f"{line:<58}{'':>8}{x['p50_ms']:>9.1f}{x['p99_ms']:>9.1f}"
                f"{v['errors'] if team == 'big' else '':>7}"
                f"   {cpu_text(v['cpu_percent']) if team == 'big' else ''}"
            )
        print(
            f"{'':<4}median big/small = {v['ratio_p50']:.2f} (<= {ADD_RATIO_MAX}) "
            f"over {v['big']['n']} adds each"
            f"{' (cut short by the time cap)' if v['cut_short'] else ''}; response "
            f"{v['big']['response_bytes']:,} vs {v['small']['response_bytes']:,} bytes: "
            f"{'PASS' if v['pass'] else 'FAIL'}"
        )
        if v["first_error"]:
            print(f"{'':<4}first error: {v['first_error']}")
    groups = results.get("group_lists") or {}
    tw = results["seeding"]["teams_workspace"]
    for name in ("excludedAttributes=members", "default page (with members)"):
        x = groups.get(name)
        if not x:
            continue
        line = f"3. GET /Groups {name}, {tw['teams']:,} x {tw['team_size']:,}"
        print(
            f"{line:<58}{'':>8}{x['p50_ms']:>9.1f}{x['p99_ms']:>9.1f}{x['errors']:>7}"
            f"   {cpu_text(x['cpu_percent'])}"
        )
        if "pass" in x:
            print(
                f"{'':<4}p99 = {x['p99_ms']:.1f} ms (< {GROUPS_P99_MS:.0f}) over {x['n']} requests: "
                f"{'PASS' if x['pass'] else 'FAIL'}"
            )
        else:
            print(f"{'':<4}context: {x['n']} requests, {x['response_bytes']:,} bytes per page")
        if x["first_error"]:
            print(f"{'':<4}first error: {x['first_error']}")
    seeding = results["seeding"]
    la = seeding["lookup_workspace"]
    print(
        f"\nseeding (handlers, {seeding['seconds']:.0f} s, both workspaces at once in 2 processes): "
        f"{la['users']:,} users at {la['users_per_second']:,}/s; outbox {la['outbox_delivered']:,} "
        f"notifications in {la['outbox_seconds']:.0f} s;\n    big team {la['big_team_members']:,} members at "
        f"{la['memberships_per_second']:,}/s; {tw['teams']:,} teams x {tw['team_size']:,} "
        f"({tw['memberships']:,} memberships) at {tw['memberships_per_second']:,}/s; "
        f"settle {seeding['settle']}"
    )
    diag = results.get("diagnostics") or {}
    if diag:
        idle = diag["idle_server_cpu_percent"]
        print(
            f"idle scimledger server (1 worker): app {idle['app']}%, PostgreSQL {idle['postgres']}% "
            f"of a core; outbox poll {execution_ms(diag['outbox_poll'])} ms (from position "
            f"{diag['outbox_poll_after']:,} of {diag['log_head']:,}), "
            f"find_users {execution_ms(diag['find_users'])} ms"
        )
    if tw["scaled_down"]:
        print(
            f"\nNOTE: the teams workspace was scaled down to {tw['teams']} teams (seeding ran out of budget)"
        )
    warn = [
        x["cpu_percent"]["other"]
        for r in lookup["runs"]
        for x in (r["ceiling"], r["scim"])
        if x["cpu_percent"]["other"] > run.OTHER_CPU_WARN
    ]
    if warn:
        print(f"\nwarning: other processes used up to {max(warn)}% CPU during the look-up runs")
    for section in ("lookup", "team_adds", "group_lists"):
        for name, p in ((results.get(section) or {}).get("profiles") or {}).items():
            if not p:
                continue
            print(
                f"\npy-spy, {section} / {name}: {p['samples']} samples in {PROFILE_SECONDS} s "
                f"(~{p['cpu_percent_sampled']}% of a core) ({p['raw']})"
            )
            print("  hottest functions (self, % of samples; Runner.run = uvloop/httptools C code):")
            for frame, pct in p["self_top"][:8]:
                print(f"    {pct:5.1f}%  {frame}")
            print("  scimledger code on the stack (inclusive):")
            for frame, pct in p["scimledger_inclusive_top"][:12]:
                print(f"    {pct:5.1f}%  {frame}")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"queries-{stamp}.json"
    text = json.dumps(results, indent=2, default=str) + "\n"
    path.write_text(text)
    (out_dir / "queries-latest.json").write_text(text)
    print(f"\nwrote {path.relative_to(ROOT)} and bench/results/queries-latest.json")


# --- main ---------------------------------------------------------------------------------------------------
def workspace(env: dict[str, str], name: str, domain: str) -> dict[str, str]:
    """A workspace (verified domain, seats, automatic seats) and a SCIM token, made with the CLI."""
    ws = run.cli(
        env, "workspace", "create", "--name", name, "--domain", domain, "--seats", "1000000", "--auto-seats"
    )
    token = run.cli(env, "token", "create", "--workspace", ws["workspace_id"], "--name", "bench")
    return {
        "id": ws["workspace_id"],
        "token": token["token"],
        "token_id": token["token_id"],
        "domain": domain,
    }


def main() -> int:
    parser = argparse.ArgumentParser(
        description="scimledger reads and team changes at size, against baselines"
    )
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "40000")))
    parser.add_argument("--warmup", type=int, default=2000)
    parser.add_argument("--users", type=int, default=100_000, help="members of the look-up workspace")
    parser.add_argument("--teams", type=int, default=1000)
    parser.add_argument("--team-size", type=int, default=1000)
    parser.add_argument("--team-pool", type=int, default=5000, help="members the teams are drawn from")
    parser.add_argument("--adds", type=int, default=200, help="measured adds per team (measurement 2)")
    parser.add_argument("--add-warmup", type=int, default=10)
    parser.add_argument("--add-seconds", type=float, default=75, help="time cap per team-add variant")
    parser.add_argument("--budget", type=float, default=690, help="seconds for the whole run")
    opts = parser.parse_args()
    if opts.team_size > opts.team_pool:
        parser.error("--team-size must not exceed --team-pool")
    started_at = time.monotonic()
    deadline = started_at + opts.budget
    wrk = run.ensure_wrk()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    started, code = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), run.code_version()
    stamp = started.replace(":", "").replace("-", "")
    home = Path(tempfile.mkdtemp(prefix="scimledger-queries-"))
    home.chmod(0o755)  # as root PostgreSQL runs as 'postgres' and must reach its data directory in here
    url = os.environ.get("DATABASE_URL")
    embedded = None
    results: dict[str, Any] = {}
    try:
        if url:
            database, tag = "DATABASE_URL", f"q{int(time.time())}."  # userNames new to that database
        else:
            embedded = pg.ensure_server(home, fsync=True)
            url, database, tag = embedded.url(), "fresh embedded PostgreSQL", ""
        fsync = run.sql(
            url, "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')"
        )
        pg_pid = embedded.pid if embedded else None
        say(
            f"code {code}; {database}, fsync/synchronous_commit = {fsync}; {os.cpu_count()} cores shared by "
            f"the client, the app and PostgreSQL; budget {opts.budget:.0f} s"
        )
        # Throughput is measured with one token: its rate limit (README "Limits") is off here.
        env = {**os.environ, "DATABASE_URL": url, "SCIMLEDGER_HOME": str(home), "SCIMLEDGER_RATE_LIMIT": "0"}
        a = workspace(env, "bench look-ups", f"{tag}example.com")
        b = workspace(env, "bench teams", f"{tag}example.org")
        extra = 2 * (opts.adds + opts.add_warmup) + PROFILE_ADDS
        say(
            f"seeding through the handlers: {opts.users:,} (+{extra}) members, "
            f"a team of {opts.users:,} and one of 100; {opts.teams:,} teams of {opts.team_size:,} ..."
        )
        stop_at = time.time() + SEED_SHARE * opts.budget - (time.monotonic() - started_at)
        seeding = seed(url, a, b, opts, stop_at)
        say(f"seeded in {seeding['seconds']:.0f} s; settling (outbox, vacuum/analyze, checkpoint) ...")
        seeding["settle"] = asyncio.run(settle(url))
        names = [f"user-{n}@{a['domain']}" for n in range(1, opts.users + 1)]
        seeding["read_ceiling_rows"] = asyncio.run(fill_read_ceiling(url, a["id"], names))
        results["seeding"] = seeding
        say(f"ready after {time.monotonic() - started_at:.0f} s: {seeding['settle']}")
        plans = asyncio.run(explain(url, a["id"], f"user-{opts.users // 2}@{a['domain']}"))
        results["diagnostics"] = {**plans, "idle_server_cpu_percent": idle_cost(env, home, pg_pid)}
        lookups = Lookups(wrk, opts.users, pg_pid)
        one, spied = measure_lookups(lookups, env, home, a, opts, 1, deadline, stamp)
        results["lookup"] = {"runs": [one], "profiles": {"lookup_1w": spied} if spied else {}}
        lookup_ws = seeding["lookup_workspace"]
        results["team_adds"] = measure_team_adds(env, home, a, lookup_ws, opts, pg_pid, deadline, stamp)
        tw = seeding["teams_workspace"]
        results["group_lists"] = measure_group_lists(
            env, home, b, tw["teams"], opts.team_size, pg_pid, deadline, stamp
        )
        if remaining(deadline) > 75:  # 2 workers: reported when time allows
            two, _ = measure_lookups(lookups, env, home, a, opts, 2, deadline, stamp)
            results["lookup"]["runs"].append(two)
        else:
            say("skipping the 2-worker look-ups: not enough time left in the budget")
    finally:
        if embedded is not None:
            pg.stop_server(embedded)
        elif url:
            with contextlib.suppress(Exception):
                run.sql(url, "DROP TABLE IF EXISTS bench_read_ceiling")
        shutil.rmtree(home, ignore_errors=True)
    lookup_ws = results["seeding"]["lookup_workspace"]
    lookup_ws["extra_members"] = len(lookup_ws["extra_members"])
    results = {
        "started": started,
        "code": code,
        "database": database,
        "fsync_synchronous_commit": fsync,
        "loadgen": f"{wrk_version}, 1 thread, lookup_users.lua; sequential http.client for 2 and 3",
        "connections": CONNECTIONS,
        "requests": opts.requests,
        "warmup": opts.warmup,
        "cores": os.cpu_count(),
        "seconds": round(time.monotonic() - started_at, 1),
        "targets": {
            "lookup_ratio_min": LOOKUP_RATIO_MIN,
            "lookup_p99_ms_max": LOOKUP_P99_MS,
            "team_add_ratio_max": ADD_RATIO_MAX,
            "groups_p99_ms_max": GROUPS_P99_MS,
        },
        **results,
    }
    report(results, stamp)
    say(f"done in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
