"""``make bench-audit``: the audit trail at scale (issue 7, "Scale"), each against a
baseline measured in the same run.

A workspace with ``--events`` events (default 1,000,000) and ``--small`` small ones (``--small-events``
each), seeded with real domain events through the real write path (``bench/seed_log.py``: the aggregates,
the mapper, the inline projections, ``scimledger_append``), interleaved in the global log. Then:

1. ``GET /api/v1/audit`` (limit 100) with each filter (none, member, team, actor, source, type, since/until,
   request_id, order=desc, a deep cursor page): p50/p99 over ``--requests`` sequential requests on one
   keep-alive connection, each followed by the same page's SQL (``log_query.page_query``: the same WHERE,
   one indexed SELECT) run directly with asyncpg; ratio = API / SELECT. The rows must be the same.
2. Point-in-time answers (``?as_of=T``: a member, a team's members, admins, seats) and
   ``GET /api/v1/members/{id}/explain``, each against an indexed SELECT of the log rows they read.
3. ``GET /api/v1/audit/export?format=ndjson`` of the whole big workspace in events/s, against
   ``COPY (SELECT <entries.COLUMNS> FROM events WHERE workspace_id = $1 ...) TO STDOUT`` (asyncpg
   ``copy_from_query``) of the same rows.
4. ``projections rebuild --verify`` in-process (``projections.rebuild.rebuild(pool, verify=True)``) over the
   whole log, in events/s; target >= 30,000 events/s on 2 cores. The CPU split (this process vs
   PostgreSQL) tells where the time goes.

The server is ``scimledger serve`` (1 uvicorn worker) on a fresh embedded PostgreSQL with fsync on (or
``DATABASE_URL``). A measurement whose endpoint the app does not route yet is reported as missing. Results
go to ``bench/results/audit-<UTC time>.json`` and ``bench/results/audit-latest.json``; exit code 0 unless
something broke. ``--events 50000`` is a smoke run of a minute or so.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import http.client
import json
import os
import random
import resource
import select
import shutil
import socket
import statistics
import sys
import tempfile
import threading
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from urllib.parse import urlencode, urlsplit
from uuid import UUID

import asyncpg
import harness as run  # bench/harness.py: servers on free ports, CPU accounting, the commit measured
import orjson
from seed_log import Actor, LogSeeder, Plan, load_workspace, seed_interleaved

from scimledger import handlers, pg
from scimledger.app import build_store
from scimledger.store.event_store import EventStore, Metadata

BENCH, ROOT, BIN = run.BENCH, run.ROOT, run.BIN
REBUILD_TARGET = 30_000  # events/s (issue 7)
PAGE = 100
SECRET = "bench-audit-cursor-secret"  # SCIMLEDGER_SECRET of the server: deep cursors are made here too
OPERATOR = Metadata(actor_kind="operator", actor_id="bench", actor_name="bench/audit.py", source="system")


def say(text: str) -> None:
    print(f"audit: {text}", flush=True)


# --- seeding ------------------------------------------------------------------------------------------------
@dataclass
class SeededWorkspace:
    id: UUID
    admin_key: str
    admin_key_id: UUID
    domain: str
    tokens: dict[str, UUID] = field(default_factory=dict)
    seeder: LogSeeder | None = None


async def new_workspace(store: EventStore, name: str, domain: str, token_names: list[str]) -> SeededWorkspace:
    """A workspace (verified domain, 500 seats) with its admin key and SCIM tokens, through the handlers."""
    created = await handlers.create_workspace(
        store, handlers.CreateWorkspace(name=name, domains=(domain,), seats=500), OPERATOR
    )
    key_id = await store.pool.fetchval(
        "SELECT id FROM admin_keys WHERE workspace_id = $1", created.workspace_id
    )
    out = SeededWorkspace(created.workspace_id, created.admin_key, key_id, domain)
    for token_name in token_names:
        issued = await handlers.issue_token(
            store, handlers.IssueToken(workspace_id=created.workspace_id, name=token_name), OPERATOR
        )
        out.tokens[token_name] = issued.token_id
    return out


def seeder_for(
    store: EventStore, ws: SeededWorkspace, workspace: Any, rng: random.Random, persons: set[UUID]
) -> LogSeeder:
    scim = [
        Actor("token", str(token_id), name, "scim", run_agent(name), f"10.0.{i}.{7 + i}")
        for i, (name, token_id) in enumerate(ws.tokens.items())
    ]
    admin = Actor(
        "admin",
        str(ws.admin_key_id),
        f"admin key {str(ws.admin_key_id)[:8]}",
        "admin",
        "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 Chrome/126.0",
        "192.0.2.10",
    )
    system = Actor("operator", "root", "root", "system", None, None)
    return LogSeeder(store, workspace, ws.domain, scim, admin, system, rng, persons)


def run_agent(token_name: str) -> str:
    return "Okta SCIM Client 1.0.0" if token_name.startswith("Okta") else "Azure Active Directory SCIM Client"


async def seed(
    url: str, opts: argparse.Namespace
) -> tuple[SeededWorkspace, list[SeededWorkspace], dict[str, Any]]:
    """The big workspace and the small ones, interleaved; then the lagging outbox caught up, vacuum/analyze
    and a checkpoint, so that no background work runs behind the measurements."""
    from projections.runner import catch_up

    pool = await pg.create_pool(url, min_size=1, max_size=10)  # two lanes per workspace write at once
    try:
        store = build_store(pool)
        rng = random.Random(opts.seed)
        big = await new_workspace(store, "bench audit", "example.com", ["Okta", "Entra ID"])
        small = [
            await new_workspace(store, f"bench small {i}", domain, ["Okta"])
            for i, domain in enumerate(("example.com", "example.org", "example.net")[: opts.small])
        ]
        persons: set[UUID] = set()
        seeders = []
        for ws, events in [(big, opts.events), *((s, opts.small_events) for s in small)]:
            ws.seeder = seeder_for(store, ws, await load_workspace(store, ws.id), rng, persons)
            seeders.append((ws.seeder, Plan.for_events(events)))
        say(
            f"seeding {opts.events:,} events into one workspace and {opts.small_events:,} into each of "
            f"{len(small)} others (real aggregates, inline projections, scimledger_append) ..."
        )
        seconds = await seed_interleaved(pool, seeders)
        total = sum(s.seeded.events for s, _ in seeders)
        say(f"seeded {total:,} events in {seconds:.0f} s ({total / seconds:,.0f} events/s)")
        started = time.monotonic()
        await catch_up(pool)
        outbox_s = time.monotonic() - started
        started = time.monotonic()
        for table in (
            "events",
            "snapshots",
            "scim_users",
            "scim_groups",
            "scim_group_members",
            "drift",
            "outbox",
        ):
            await pool.execute(f"VACUUM (ANALYZE) {table}")
        vacuum_s = time.monotonic() - started
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await pool.execute("CHECKPOINT")
        log_events = await pool.fetchval("SELECT count(*) FROM events")
        assert big.seeder is not None
        info = {
            "log_events": log_events,
            "seeded_events": total,
            "seconds": round(seconds, 1),
            "events_per_second": round(total / seconds),
            "big_workspace": {
                "events": big.seeder.seeded.events,
                "members": len(big.seeder.member_ids),
                "teams": len(big.seeder.team_ids),
                "commands": big.seeder.seeded.commands_by_kind,
            },
            "small_workspaces": [s.seeder.seeded.events for s in small if s.seeder],
            "outbox_catch_up_s": round(outbox_s, 1),
            "vacuum_analyze_s": round(vacuum_s, 1),
            "events_by_type": dict(
                await pool.fetch(
                    "SELECT event_type, count(*) FROM events WHERE workspace_id = $1"
                    " GROUP BY 1 ORDER BY 2 DESC",
                    big.id,
                )
            ),
        }
        return big, small, info
    finally:
        await pool.close()


# --- measuring ----------------------------------------------------------------------------------------------
class Client:
    """One keep-alive HTTP/1.1 connection with the admin key, requests one at a time (TCP_NODELAY)."""

    def __init__(self, base: str, admin_key: str) -> None:
        self.parts = urlsplit(base)
        self.headers = {"Authorization": f"Bearer {admin_key}", "Accept": "application/json"}
        self.conn = self._connect()

    def _connect(self) -> http.client.HTTPConnection:
        conn = http.client.HTTPConnection(self.parts.hostname or "127.0.0.1", self.parts.port, timeout=300)
        conn.connect()
        conn.sock.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        return conn

    def _fresh(self) -> None:
        """A new connection, before the clock starts, when the server closed the idle one (its socket
        then reads as ready: end of file)."""
        sock = self.conn.sock
        if sock is None or select.select([sock], [], [], 0)[0]:
            self.conn.close()
            self.conn = self._connect()

    def _response(self, path: str) -> http.client.HTTPResponse:
        """The response to GET ``path``; once on a new connection when the server had closed the idle one
        (uvicorn closes keep-alive connections idle for 5 s, e.g. while a slow baseline ran)."""
        for attempt in (1, 2):
            try:
                self.conn.request("GET", path, headers=self.headers)
                return self.conn.getresponse()
            except (http.client.RemoteDisconnected, ConnectionResetError, BrokenPipeError):
                self.conn.close()
                self.conn = self._connect()
                if attempt == 2:
                    raise
        raise AssertionError("unreachable")

    def get(self, path: str) -> tuple[int, bytes, float]:
        self._fresh()
        started = time.perf_counter()
        response = self._response(path)
        body = response.read()
        return response.status, body, time.perf_counter() - started

    def stream(self, path: str, on_chunk: Callable[[bytes], None]) -> tuple[int, float]:
        """GET ``path`` and hand each chunk of the body to ``on_chunk`` as it arrives."""
        self._fresh()
        started = time.perf_counter()
        response = self._response(path)
        while chunk := response.read1(1 << 20):
            on_chunk(chunk)
        return response.status, time.perf_counter() - started

    def close(self) -> None:
        self.conn.close()


def percentile_ms(values: list[float], q: float) -> float:
    """Nearest-rank percentile (q in 0..100) of seconds, in milliseconds."""
    ordered = sorted(values)
    if not ordered:
        return 0.0
    rank = max(1, min(len(ordered), round(q / 100 * len(ordered) + 0.5)))
    return round(ordered[rank - 1] * 1000, 2)


def summary(seconds: list[float]) -> dict[str, Any]:
    return {
        "n": len(seconds),
        "p50_ms": round(statistics.median(seconds) * 1000, 2) if seconds else 0.0,
        "p99_ms": percentile_ms(seconds, 99),
    }


Read = Callable[[asyncpg.Connection], Awaitable[list[asyncpg.Record]]]
Positions = Callable[[Any], list[int] | None]
BY_KEY = "SELECT {columns} FROM events WHERE position = ANY($1::bigint[]) ORDER BY position"


@dataclass
class Case:
    """One measurement: an API request, the SELECT of the log rows it reads (the endpoint's own WHERE, run
    directly), and what the answer's rows must be."""

    name: str
    path: str  # with its query string
    read: Read  # the baseline: the same rows' indexed SELECT, run directly with asyncpg
    answered: Positions = lambda body: None  # the log positions the API answered with
    expected: Callable[[list[asyncpg.Record]], list[int] | None] = lambda rows: None
    note: str = ""
    index_order: bool = False  # the endpoint also rules out sorting (log_query.planner_settings)


def sql_read(sql: str, args: list[Any]) -> Read:
    async def read(conn: asyncpg.Connection) -> list[asyncpg.Record]:
        return list(await conn.fetch(sql, *args))

    return read


@dataclass
class Baselines:
    """Where the baselines run: one connection whose statements are planned for their values
    (``plan_cache_mode = force_custom_plan``, as the audit API plans its own), and one that also rules out
    sorting, for the pages the API reads in index order (``log_query.planner_settings``)."""

    conn: asyncpg.Connection
    index_order: asyncpg.Connection

    @classmethod
    async def open(cls, url: str) -> Baselines:
        conn = await asyncpg.connect(url)
        ordered = await asyncpg.connect(url)
        await conn.execute("SET plan_cache_mode = force_custom_plan")
        await ordered.execute("SET plan_cache_mode = force_custom_plan; SET enable_sort = off")
        return cls(conn, ordered)

    async def close(self) -> None:
        await self.conn.close()
        await self.index_order.close()


async def measure(client: Client, baselines: Baselines, case: Case, n: int, warmup: int) -> dict[str, Any]:
    """``warmup`` + ``n`` rounds of (API request, baseline SELECT, the same rows by primary key),
    interleaved so that all three see the same machine; the API's answer is checked against the
    baseline's rows."""
    from scimledger.audit import entries

    by_key = BY_KEY.format(columns=entries.COLUMNS)
    conn = baselines.index_order if case.index_order else baselines.conn
    api: list[float] = []
    base: list[float] = []
    keyed: list[float] = []
    problem, rows, positions = "", 0, []
    for i in range(warmup + n):
        status, body, seconds = client.get(case.path)
        started = time.perf_counter()
        records = await case.read(conn)
        sql_seconds = time.perf_counter() - started
        if i == 0:
            keyed_rows = bool(records) and "position" in list(records[0].keys())
            positions = [r["position"] for r in records] if keyed_rows else []
            rows = len(records)
        started = time.perf_counter()
        await conn.fetch(by_key, positions)
        key_seconds = time.perf_counter() - started
        if status != 200:
            problem = problem or f"{status} {body[:300]!r}"
            continue
        if i == 0:
            answered, expected = case.answered(orjson.loads(body)), case.expected(records)
            rows = len(expected) if expected is not None else rows
            if expected is not None and answered != expected:
                problem = f"API rows {str(answered)[:100]} differ from the SELECT's {str(expected)[:100]}"
        if i >= warmup:
            api.append(seconds)
            base.append(sql_seconds)
            keyed.append(key_seconds)
    a, b, k = summary(api), summary(base), summary(keyed)
    out = {
        "path": case.path,
        "api": a,
        "select": b,
        "by_key": k,
        "ratio_p50": round(a["p50_ms"] / b["p50_ms"], 2) if b["p50_ms"] else None,
        "ratio_p99": round(a["p99_ms"] / b["p99_ms"], 2) if b["p99_ms"] else None,
        "ratio_by_key_p50": round(a["p50_ms"] / k["p50_ms"], 2) if k["p50_ms"] else None,
        "rows": rows,
        "note": case.note,
        "error": problem,
    }
    flag = f"  ERROR {problem}" if problem else ""
    say(
        f"  {case.name}: API p50 {a['p50_ms']} / p99 {a['p99_ms']} ms, SELECT p50 {b['p50_ms']} / "
        f"p99 {b['p99_ms']} ms, ratio {out['ratio_p50']} / {out['ratio_p99']}, {rows} rows{flag}"
    )
    return out


def routed() -> set[tuple[str, str]]:
    """(method, path template) of every route the app has now."""
    from scimledger.app import routes

    out = set()
    for route in routes():
        for method in getattr(route, "methods", None) or ():
            out.add((method, getattr(route, "path", "")))
    return out


def rfc3339(at: dt.datetime) -> str:
    return at.astimezone(dt.UTC).strftime("%Y-%m-%dT%H:%M:%S.%fZ")


async def position_at(conn: asyncpg.Connection, ws: UUID, share: float) -> asyncpg.Record:
    """The workspace's event at ``share`` (0..1) of its log: position and recorded_at."""
    count = await conn.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", ws)
    row = await conn.fetchrow(
        "SELECT position, recorded_at FROM events WHERE workspace_id = $1"
        " ORDER BY position OFFSET $2 LIMIT 1",
        ws,
        int(count * share),
    )
    assert row is not None
    return row


@dataclass
class Picks:
    """The ids and times the measurements ask about, chosen from the seeded log."""

    member: UUID  # the first member provisioned: the longest history
    team: UUID  # the first team
    admin_key: UUID
    request_id: str  # a deprovisioning (several events under one request id)
    since: dt.datetime  # 40% into the big workspace's log
    until: dt.datetime  # 60%
    as_of: dt.datetime  # 50%
    deep: int  # a position 90% into the big workspace's log


async def picks(conn: asyncpg.Connection, big: SeededWorkspace) -> Picks:
    ws = big.id

    async def first(sql: str) -> Any:
        return await conn.fetchval(sql + " ORDER BY position LIMIT 1", ws)

    member = await first(
        "SELECT stream_id FROM events WHERE workspace_id = $1 AND event_type = 'MemberProvisioned'"
    )
    team = await first("SELECT stream_id FROM events WHERE workspace_id = $1 AND event_type = 'TeamCreated'")
    request_id = await first(
        "SELECT metadata->>'request_id' FROM events WHERE workspace_id = $1"
        " AND event_type IN ('MemberDeprovisioned', 'MemberSuspended')"
    )
    return Picks(
        member=member,
        team=team,
        admin_key=big.admin_key_id,
        request_id=request_id,
        since=(await position_at(conn, ws, 0.4))["recorded_at"],
        until=(await position_at(conn, ws, 0.6))["recorded_at"],
        as_of=(await position_at(conn, ws, 0.5))["recorded_at"],
        deep=(await position_at(conn, ws, 0.9))["position"],
    )


def page_positions(body: Any) -> list[int]:
    return [entry["position"] for entry in body["entries"]]


def audit_cases(big: SeededWorkspace, p: Picks) -> list[Case]:
    """``GET /api/v1/audit`` with each filter, and the same page's SQL (``log_query.page_query``, exactly
    what the endpoint runs) as the baseline."""
    from scimledger.audit import log_query
    from scimledger.audit.log_query import AuditFilters

    ws = big.id
    variants: list[tuple[str, dict[str, Any], list[tuple[str, str]], int | None]] = [
        ("no filter", {}, [], None),
        ("member", {"member": p.member}, [("member", str(p.member))], None),
        ("team", {"team": p.team}, [("team", str(p.team))], None),
        ("actor (admin key)", {"actor": str(p.admin_key)}, [("actor", str(p.admin_key))], None),
        ("source=admin", {"source": "admin"}, [("source", "admin")], None),
        ("type=MemberRoleChanged", {"types": ("MemberRoleChanged",)}, [("type", "MemberRoleChanged")], None),
        (
            "type x2 (suspended, reactivated)",
            {"types": ("MemberSuspended", "MemberReactivated")},
            [("type", "MemberSuspended"), ("type", "MemberReactivated")],
            None,
        ),
        (
            "since/until (40%..60%)",
            {"since": p.since, "until": p.until},
            [("since", rfc3339(p.since)), ("until", rfc3339(p.until))],
            None,
        ),
        ("request_id", {"request_id": p.request_id}, [("request_id", p.request_id)], None),
        ("order=desc", {"order": "desc"}, [("order", "desc")], None),
        ("deep cursor page (90%)", {}, [], p.deep),
    ]
    cases = []
    for name, fields, query, after in variants:
        filters = AuditFilters(workspace_id=ws, **fields)
        params = [*query, ("limit", str(PAGE))]
        if after is not None:
            params.append(("cursor", log_query.encode_cursor(filters, after, SECRET.encode())))
        sql, args = log_query.page_query(filters, after, PAGE + 1)  # what fetch_page runs
        cases.append(
            Case(
                name=f"audit page, {name}",
                path="/api/v1/audit?" + urlencode(params),
                read=sql_read(sql, args),
                answered=page_positions,
                expected=lambda rows: [r["position"] for r in rows][:PAGE],
                index_order=log_query.walks_an_index(filters),
            )
        )
    return cases


# --- export -------------------------------------------------------------------------------------------------
def measure_export(client: Client, path: str) -> dict[str, Any]:
    """The whole export through the API (on its own connection): events (lines) and bytes per second."""
    lines = nbytes = 0

    def count(chunk: bytes) -> None:
        nonlocal lines, nbytes
        lines += chunk.count(b"\n")
        nbytes += len(chunk)

    try:
        status, seconds = client.stream(path, count)
    finally:
        client.close()
    return {
        "status": status,
        "events": lines,
        "bytes": nbytes,
        "seconds": round(seconds, 2),
        "events_per_second": round(lines / seconds) if seconds else 0,
    }


async def measure_copy(conn: asyncpg.Connection, ws: UUID) -> dict[str, Any]:
    """``COPY (SELECT <the export's columns> ...) TO STDOUT`` of the same rows (the export's baseline)."""
    from scimledger.audit import entries

    lines = nbytes = 0

    async def sink(chunk: bytes) -> None:
        nonlocal lines, nbytes
        lines += chunk.count(b"\n")
        nbytes += len(chunk)

    started = time.perf_counter()
    await conn.copy_from_query(
        f"SELECT {entries.COLUMNS} FROM events WHERE workspace_id = $1 ORDER BY position", ws, output=sink
    )
    seconds = time.perf_counter() - started
    return {
        "events": lines,
        "bytes": nbytes,
        "seconds": round(seconds, 2),
        "events_per_second": round(lines / seconds) if seconds else 0,
    }


# --- rebuild ------------------------------------------------------------------------------------------------
class PostgresCpu:
    """CPU seconds used by the PostgreSQL server's processes while the block runs, sampled every 0.2 s in a
    thread, so that a backend that exits meanwhile still counts (asyncpg's pool closes a connection after
    50,000 queries, which a rebuild's exceeds)."""

    def __init__(self, pg_pid: int | None) -> None:
        self.pg_pid = pg_pid
        self.first: dict[int, int] = {}
        self.last: dict[int, int] = {}
        self.stop = threading.Event()
        self.thread = threading.Thread(target=self._run, daemon=True)

    def _sample(self) -> dict[int, int]:
        procs: dict[int, tuple[int, int]] = {}
        for stat in Path("/proc").glob("[0-9]*/stat"):
            with contextlib.suppress(OSError, IndexError, ValueError):
                fields = stat.read_text().rsplit(")", 1)[1].split()
                procs[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
        return {
            pid: ticks for pid, (ppid, ticks) in procs.items() if pid == self.pg_pid or ppid == self.pg_pid
        }

    def _run(self) -> None:
        while not self.stop.wait(0.2):
            self.last.update(self._sample())

    def __enter__(self) -> PostgresCpu:
        if self.pg_pid:
            self.first = self._sample()
            self.last = dict(self.first)
            self.thread.start()
        return self

    def __exit__(self, *_: object) -> None:
        if self.pg_pid:
            self.stop.set()
            self.thread.join()
            self.last.update(self._sample())

    @property
    def seconds(self) -> float:
        ticks = sum(t - self.first.get(pid, 0) for pid, t in self.last.items())
        return ticks / os.sysconf("SC_CLK_TCK")


def python_cpu() -> float:
    me = resource.getrusage(resource.RUSAGE_SELF)
    return float(me.ru_utime + me.ru_stime)


@contextlib.contextmanager
def py_spy_self(path: Path, enabled: bool) -> Any:
    """py-spy recording this process (raw, idle frames left out) for the duration of the block."""
    spy = BIN / "py-spy" if (BIN / "py-spy").exists() else shutil.which("py-spy")
    if not enabled or spy is None:
        yield None
        return
    import signal
    import subprocess

    proc = subprocess.Popen(
        [str(spy), "record", "-p", str(os.getpid()), "-r", "100", "-f", "raw", "-o", str(path)],
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    time.sleep(1.0)  # let it attach
    try:
        yield path
    finally:
        proc.send_signal(signal.SIGINT)
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()


def profile_summary(path: Path, top: int = 14) -> dict[str, Any]:
    """Of a raw py-spy profile of this process (the CPU sampler's thread left out): the share of samples
    idle in the event loop (waiting for PostgreSQL), the hottest leaf functions and the most-traversed
    project, asyncpg and eventsourcing functions, as % of all samples."""
    from collections import Counter

    own: Counter[str] = Counter()
    through: Counter[str] = Counter()
    total = idle = 0
    for line in path.read_text().splitlines():
        stack, _, count = line.rpartition(" ")
        if not stack or not count.isdigit() or "PostgresCpu" in stack or "py_spy_self" in stack:
            continue
        frames = stack.split(";")
        total += int(count)
        if frames[-1].startswith("EpollSelector.select"):
            idle += int(count)
        own[frames[-1]] += int(count)
        for frame in set(frames):
            if any(k in frame for k in ("scimledger/", "projections/", "asyncpg/", "eventsourcing/")):
                through[frame] += int(count)

    def share(counter: Counter[str]) -> list[list[Any]]:
        return [[f, round(100 * c / total, 1)] for f, c in counter.most_common(top)] if total else []

    return {
        "samples": total,
        "idle_percent": round(100 * idle / total, 1) if total else 0,
        "self": share(own),
        "inclusive": share(through),
        "raw": str(path),
    }


async def measure_rebuild(url: str, pg_pid: int | None, profile: Path | None) -> dict[str, Any]:
    """``projections rebuild --verify`` in-process, over the whole log."""
    from projections import ALL
    from projections.rebuild import RebuildMismatch, rebuild

    pool = await pg.create_pool(url, min_size=1, max_size=2)
    try:
        log_events = await pool.fetchval("SELECT count(*) FROM events")
        wanted = sorted({t for p in ALL for t in p.event_types})
        applied = await pool.fetchval("SELECT count(*) FROM events WHERE event_type = ANY($1)", wanted)
        before, started = python_cpu(), time.monotonic()
        error = ""
        with (
            PostgresCpu(pg_pid) as postgres,
            py_spy_self(profile or Path("/dev/null"), profile is not None) as spied,
        ):
            try:
                digests = await rebuild(pool, verify=True)
            except RebuildMismatch as mismatch:
                digests, error = mismatch.digests, str(mismatch)
        seconds = time.monotonic() - started
        cpu = {"python": python_cpu() - before, "postgres": postgres.seconds}
    finally:
        await pool.close()
    out: dict[str, Any] = {
        "log_events": log_events,
        "applied_events": applied,
        "seconds": round(seconds, 1),
        "events_per_second": round(log_events / seconds),
        "applied_per_second": round(applied / seconds),
        "target": REBUILD_TARGET,
        "pass": log_events / seconds >= REBUILD_TARGET and not error,
        "verified_tables": len(digests),
        "mismatch": error,
        "cpu_percent": {k: round(100 * v / seconds) for k, v in cpu.items()},
    }
    if spied is not None and spied.exists():
        out["profile"] = profile_summary(spied)
    return out


# --- the run ------------------------------------------------------------------------------------------------
async def migrate(url: str) -> None:
    conn = await asyncpg.connect(url)
    try:
        await pg.migrate(conn)
    finally:
        await conn.close()


async def with_conn(url: str, work: Callable[[asyncpg.Connection], Awaitable[Any]]) -> Any:
    conn = await asyncpg.connect(url)
    try:
        return await work(conn)
    finally:
        await conn.close()


def missing(have: set[tuple[str, str]], path: str) -> bool:
    return ("GET", path) not in have


def measure_api(
    base: str, url: str, big: SeededWorkspace, opts: argparse.Namespace, have: set[tuple[str, str]]
) -> dict[str, Any]:
    """Sections 1-3 against the running server; a section that breaks is reported and the others run."""
    out: dict[str, Any] = {"pages": {}, "point_in_time": {}, "export": None, "missing": [], "errors": []}

    async def section(name: str, work: Callable[[], Awaitable[None]]) -> None:
        try:
            await work()
        except Exception as error:  # reported with the results; the next section still runs
            say(f"{name} broke: {error!r}")
            out["errors"].append(f"{name}: {error!r}")

    async def run_all() -> None:
        baselines = await Baselines.open(url)
        client = Client(base, big.admin_key)
        try:
            p = await picks(baselines.conn, big)
            out["picks"] = {k: str(v) for k, v in p.__dict__.items()}

            async def pages() -> None:
                if missing(have, "/api/v1/audit"):
                    out["missing"].append("GET /api/v1/audit")
                    return
                say(f"audit pages: {opts.warmup} + {opts.requests} requests each, SELECT after each ...")
                for case in audit_cases(big, p):
                    out["pages"][case.name] = await measure(
                        client, baselines, case, opts.requests, opts.warmup
                    )

            async def point_in_time() -> None:
                cases, absent = await point_in_time_cases(baselines.conn, big, p, have)
                out["missing"] += absent
                say(f"point-in-time answers: {opts.warmup} + {opts.requests} requests each ...")
                for case in cases:
                    result = await measure(client, baselines, case, opts.requests, opts.warmup)
                    out["point_in_time"][case.name] = result

            async def export() -> None:
                if missing(have, "/api/v1/audit/export"):
                    out["missing"].append("GET /api/v1/audit/export")
                    return
                say("export: COPY baseline, then GET /api/v1/audit/export?format=ndjson ...")
                copy = await measure_copy(baselines.conn, big.id)
                api = measure_export(Client(base, big.admin_key), "/api/v1/audit/export?format=ndjson")
                ratio = (
                    api["events_per_second"] / copy["events_per_second"] if copy["events_per_second"] else 0
                )
                ok = api["status"] == 200 and api["events"] == copy["events"]
                out["export"] = {"api": api, "copy": copy, "ratio": round(ratio, 3), "same_count": ok}
                say(
                    f"  export {api['events']:,} events at {api['events_per_second']:,}/s, COPY "
                    f"{copy['events']:,} at {copy['events_per_second']:,}/s: ratio {ratio:.2f}"
                )

            await section("audit pages", pages)
            await section("point-in-time answers", point_in_time)
            await section("export", export)
        finally:
            client.close()
            await baselines.close()

    asyncio.run(run_all())
    return out


async def point_in_time_cases(
    conn: asyncpg.Connection, big: SeededWorkspace, p: Picks, have: set[tuple[str, str]]
) -> tuple[list[Case], list[str]]:
    """As-of answers and explain (issue 7), each against the SELECT of the log rows it is computed from
    (``scimledger.audit.timeline`` / ``point_in_time``: the same SQL, run directly, at the same log
    position as the API's ``as_of``)."""
    wanted = {
        "/api/v1/members/{id}/explain": "explain",
        "/api/v1/teams/{id}/members": "team",
        "/api/v1/admins": "admins",
        "/api/v1/seats": "seats",
    }
    absent = [f"GET {path}" for path in wanted if missing(have, path)]
    try:
        from scimledger.audit import point_in_time, timeline
    except ImportError:
        return [], [*absent, "GET /api/v1/members/{id}?as_of (scimledger.audit.timeline)"]
    ws, at = big.id, rfc3339(p.as_of)
    up_to = await timeline.position_at(conn, p.as_of)
    latest = timeline.LATEST

    async def member_reads(c: asyncpg.Connection, bound: int) -> list[asyncpg.Record]:
        return list(await timeline.member_rows(c, ws, p.member, bound))

    def positions(key: str, field: str) -> Positions:
        return lambda body: [item[field]["position"] for item in body[key]]

    cases = [
        Case(
            "as_of: member",
            f"/api/v1/members/{p.member}?" + urlencode({"as_of": at}),
            lambda c: member_reads(c, up_to),
            note="SELECT: timeline.member_rows (its stream + events naming it) up to as_of",
        ),
        Case(
            "as_of: team members (first 100)",
            f"/api/v1/teams/{p.team}/members?" + urlencode({"as_of": at}),
            lambda c: timeline.present_memberships(c, ws, p.team, up_to, after_position=0, limit=101),
            answered=positions("members", "added"),
            expected=lambda rows: [r["position"] for r in rows][:100],
            note="SELECT: timeline.present_memberships (limit 101)",
        ),
        Case(
            "as_of: admins",
            "/api/v1/admins?" + urlencode({"as_of": at}),
            sql_read(point_in_time.ADMINS_SQL, [ws, up_to, 0, None]),
            answered=positions("admins", "granted"),
            expected=lambda rows: [r["position"] for r in rows],
            note="SELECT: point_in_time.ADMINS_SQL (grants not revoked since)",
        ),
        Case(
            "as_of: seats (first 100 holders)",
            "/api/v1/seats?" + urlencode({"as_of": at}),
            sql_read(point_in_time.HOLDERS_SQL, [ws, up_to, 0, 101]),
            answered=positions("holders", "assigned"),
            expected=lambda rows: [r["position"] for r in rows][:100],
            note="SELECT: point_in_time.HOLDERS_SQL (limit 101); the API also counts every seat event",
        ),
        Case(
            "explain: member (now)",
            f"/api/v1/members/{p.member}/explain",
            lambda c: member_reads(c, latest),
            note="SELECT: timeline.member_rows of the whole log",
        ),
    ]
    routes = {
        "as_of: member": "/api/v1/members/{id}",
        "as_of: team members (first 100)": "/api/v1/teams/{id}/members",
        "as_of: admins": "/api/v1/admins",
        "as_of: seats (first 100 holders)": "/api/v1/seats",
        "explain: member (now)": "/api/v1/members/{id}/explain",
    }
    return [c for c in cases if not missing(have, routes[c.name])], absent


def report(results: dict[str, Any], stamp: str) -> None:
    s = results["seeding"]
    big = s["big_workspace"]
    print(
        f"\nlog: {s['log_events']:,} events; the big workspace {big['events']:,} ({big['members']:,} "
        f"members, {big['teams']:,} teams), {len(s['small_workspaces'])} small ones {s['small_workspaces']}"
    )
    print(
        f"seeding (real aggregates, inline projections, scimledger_append): {s['seeded_events']:,} events "
        f"in {s['seconds']:.0f} s = {s['events_per_second']:,} events/s; outbox caught up in "
        f"{s['outbox_catch_up_s']} s, vacuum/analyze {s['vacuum_analyze_s']} s"
    )
    api = results.get("api") or {}
    rows = [*(api.get("pages") or {}).items(), *(api.get("point_in_time") or {}).items()]
    if rows:
        print(
            f"\n{'ms, p50/p99 over ' + str(results['requests']) + ' sequential requests':<42}"
            f"{'API':>15}{'SELECT':>15}{'ratio':>12}{'by key':>8}{'ratio':>7}{'rows':>6}"
        )
        for name, r in rows:
            a, b, k = r["api"], r["select"], r["by_key"]
            print(
                f"{name:<42}{a['p50_ms']:>8.2f}/{a['p99_ms']:<6.1f}{b['p50_ms']:>8.2f}/{b['p99_ms']:<6.1f}"
                f"{r['ratio_p50'] or 0:>6.1f}/{r['ratio_p99'] or 0:<5.1f}{k['p50_ms']:>8.2f}"
                f"{r['ratio_by_key_p50'] or 0:>7.1f}{r['rows']:>6}"
            )
            if r["error"]:
                print(f"    ERROR: {r['error']}")
        print(
            "    SELECT: the endpoint's own SQL (same WHERE), run directly with asyncpg after each request;"
            "\n    by key: the same rows by primary key (position = ANY(...)); ratios: API / baseline"
        )
    export = api.get("export")
    if export:
        a, c = export["api"], export["copy"]
        print(
            f"\nexport ndjson, whole workspace: {a['events']:,} events in {a['seconds']} s = "
            f"{a['events_per_second']:,} events/s ({a['bytes'] / 1e6:,.0f} MB); COPY of the same rows "
            f"{c['events_per_second']:,} events/s ({c['bytes'] / 1e6:,.0f} MB); ratio {export['ratio']:.2f}"
            f"{'' if export['same_count'] else '  COUNT MISMATCH'}"
        )
    for what in api.get("missing") or []:
        print(f"not measured (the app has no route yet): {what}")
    for what in api.get("errors") or []:
        print(f"BROKE: {what}")
    rb = results.get("rebuild")
    if rb:
        verdict = "PASS" if rb["pass"] else "FAIL"
        print(
            f"\nprojections rebuild --verify: {rb['log_events']:,} log events "
            f"({rb['applied_events']:,} applied) in {rb['seconds']} s = {rb['events_per_second']:,} "
            f"events/s (target >= {rb['target']:,}): {verdict}; {rb['verified_tables']} tables compared"
            f"{'; MISMATCH ' + rb['mismatch'] if rb['mismatch'] else ''}"
        )
        cpu = rb["cpu_percent"]
        print(
            f"    CPU during the rebuild (100 = one core): python {cpu['python']}%, "
            f"PostgreSQL {cpu['postgres']}%"
        )
        prof = rb.get("profile")
        if prof:
            print(
                f"    py-spy: {prof['samples']} samples, {prof['idle_percent']}% idle in the event loop "
                "(waiting for PostgreSQL); hottest (self, %):"
            )
            for frame, pct in prof["self"][:10]:
                print(f"      {pct:5.1f}%  {frame}")
            print("    inclusive (project, asyncpg, eventsourcing frames, %):")
            for frame, pct in prof["inclusive"][:14]:
                print(f"      {pct:5.1f}%  {frame}")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"audit-{stamp}.json"
    text = json.dumps(results, indent=2, default=str) + "\n"
    path.write_text(text)
    (out_dir / "audit-latest.json").write_text(text)
    print(f"\nwrote {path.relative_to(ROOT)} and bench/results/audit-latest.json")


def main() -> int:
    parser = argparse.ArgumentParser(description="the audit trail at scale, against baselines (issue 7)")
    parser.add_argument("--events", type=int, default=int(os.environ.get("BENCH_AUDIT_EVENTS", "1000000")))
    parser.add_argument("--small", type=int, default=3, help="small workspaces besides the big one (0-3)")
    parser.add_argument("--small-events", type=int, default=None, help="events per small workspace")
    parser.add_argument("--requests", type=int, default=50, help="measured requests per case")
    parser.add_argument("--warmup", type=int, default=5)
    parser.add_argument("--seed", type=int, default=7, help="random seed of the seeded history")
    parser.add_argument("--no-profile", action="store_true", help="no py-spy during the rebuild")
    opts = parser.parse_args()
    opts.small_events = opts.small_events or max(1000, opts.events // 200)
    started_at = time.monotonic()
    started, code = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), run.code_version()
    stamp = started.replace(":", "").replace("-", "")
    home = Path(tempfile.mkdtemp(prefix="scimledger-audit-"))
    home.chmod(0o755)  # as root PostgreSQL runs as 'postgres' and must reach its data directory in here
    os.environ["SCIMLEDGER_HOME"] = str(home)  # one master key (issue 11) for the seeding and the server
    url = os.environ.get("DATABASE_URL")
    embedded = None
    results: dict[str, Any] = {}
    try:
        if url:
            database = "DATABASE_URL"
        else:
            embedded = pg.ensure_server(home, fsync=True)
            url, database = embedded.url(), "fresh embedded PostgreSQL"
        fsync = run.sql(
            url, "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')"
        )
        pg_pid = embedded.pid if embedded else None
        say(f"code {code}; {database}, fsync/synchronous_commit = {fsync}; {os.cpu_count()} cores")
        asyncio.run(migrate(url))
        big, _, results["seeding"] = asyncio.run(seed(url, opts))
        say(f"ready after {time.monotonic() - started_at:.0f} s")
        env = {**os.environ, "DATABASE_URL": url, "SCIMLEDGER_HOME": str(home), "SCIMLEDGER_SECRET": SECRET}
        env["SCIMLEDGER_RATE_LIMIT"] = "0"  # one admin key asks everything: its rate limit is off here
        have = routed()
        try:
            with run.server("scimledger", [str(BIN / "scimledger"), "serve"], env, 1, home) as (base, _pid):
                results["api"] = measure_api(base, url, big, opts, have)
        except Exception as error:  # the rebuild is still measured
            say(f"the API measurements broke: {error!r}")
            results["api"] = {"errors": [f"server: {error!r}"]}
        say("projections rebuild --verify (in-process) ...")
        profile = (
            None if opts.no_profile else Path(tempfile.gettempdir()) / f"scimledger-audit-{stamp}-rebuild.txt"
        )
        results["rebuild"] = asyncio.run(measure_rebuild(url, pg_pid, profile))
    finally:
        if embedded is not None:
            pg.stop_server(embedded)
        shutil.rmtree(home, ignore_errors=True)
    results = {
        "started": started,
        "code": code,
        "database": database,
        "fsync_synchronous_commit": fsync,
        "cores": os.cpu_count(),
        "events": opts.events,
        "requests": opts.requests,
        "warmup": opts.warmup,
        "seconds": round(time.monotonic() - started_at, 1),
        **results,
    }
    report(results, stamp)
    say(f"done in {results['seconds']:.0f} s")
    return 0


if __name__ == "__main__":
    sys.exit(main())
