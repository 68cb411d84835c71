"""The measurements of ``make bench``: each workload against scimledger and its baseline, in one run.

For each number of uvicorn workers: the one-INSERT ceiling (``ceiling_app.py``) and the one-SELECT ceiling
(``read_ceiling_app.py``), then ``scimledger serve`` (one process for all its workloads, in this order:
look-ups, creates into one workspace, creates over 20 workspaces, deactivations, group member adds, the
Entra mix, the Okta mix). Then, with one worker, the peer ``scim2-server`` (``peer_app.py``): creates,
look-ups and group member adds. Every run is a warm-up and then the measured run of the same workload
(fresh requests: a write never repeats), over ``Profile.connections`` keep-alive connections. After a run
that wrote, the next one waits until the app and PostgreSQL are idle (the server's outbox runner sends the
run's notifications), at most ``Profile.settle_cap`` seconds, and the wait is recorded.
"""

from __future__ import annotations

import dataclasses
import json
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import harness
import pools
from pools import Cursor, Line, Workspace

SCIM, PEER_API = "/scim/v2", "/v2"
OURS_ONE_RESULT = '"totalResults":1,'
PEER_ONE_RESULT = '"totalResults": 1,'
CEILING_ROW = '"userName": "user-'
IDLE_PERCENT = 15  # app + PostgreSQL below this share of one core: settled
MIX_RATE_CAP = 500  # lines per second of a mix pool: each unit uses up members of the mix workspaces


@dataclasses.dataclass(frozen=True)
class Profile:
    """How big and how long: ``FULL`` for ``make bench``, ``QUICK`` for ``make bench-quick``."""

    name: str
    workers: tuple[int, ...]
    seconds: float  # each measured run
    warmup: float  # each warm-up run
    lookup_members: int  # members of the look-up workspace (also deactivated and added to groups)
    big_groups: int  # empty groups of the look-up workspace, the group-add workload's targets
    mix_workspaces: int
    mix_users: int  # members of each mix workspace
    mix_groups: int
    group_members: int  # first members of each mix group
    peer_users: int
    peer_groups: int
    connections: int = 16  # keep-alive connections of every run: an IdP's concurrency, not a flood
    write_rate_cap: int = 1000  # lines per second of a pool that is sent once (a faster run ends early)
    settle_cap: float = 60.0


FULL = Profile(
    name="full",
    workers=(1, 2),
    seconds=12,
    warmup=2,
    lookup_members=100_000,
    big_groups=20,
    mix_workspaces=20,
    mix_users=600,
    mix_groups=10,
    group_members=20,
    peer_users=10_000,
    peer_groups=20,
    settle_cap=40.0,
)
QUICK = dataclasses.replace(
    FULL,
    name="quick",
    workers=(1,),
    seconds=3,
    warmup=1,
    lookup_members=6_000,
    mix_users=150,
    mix_groups=5,
    group_members=10,
    peer_users=6_000,
    write_rate_cap=600,
    settle_cap=3.0,
)


def shortfall(p: Profile) -> list[str]:
    """What the seeding would lack if every pool that is sent once were used up (the runs hand out each
    member once: deactivated, or added to a group); empty when the profile's sizes suffice."""
    runs = [p.warmup, p.seconds]
    lines = [max(50, round(s * p.write_rate_cap)) for s in runs]
    mix = [max(50, round(s * min(MIX_RATE_CAP, p.write_rate_cap))) for s in runs]
    big = 2 * sum(lines) * len(p.workers)  # deactivations and group adds
    per_ws = sum(-(-(n // 5) // p.mix_workspaces) + 2 * -(-(n // 4) // p.mix_workspaces) for n in mix)
    out = []
    if big > p.lookup_members:
        out.append(f"the look-up workspace needs {big:,} members, has {p.lookup_members:,}")
    if per_ws * len(p.workers) > p.mix_users - p.group_members:
        out.append(f"a mix workspace needs {per_ws * len(p.workers):,} members outside groups")
    return out


@dataclasses.dataclass
class Bench:
    """What the runs share: the load generator, servers' environment, the seeded workspaces and results."""

    profile: Profile
    wrk: str
    home: Path
    env: dict[str, str]  # for scimledger serve
    ceiling_env: dict[str, str]
    pg_pid: int | None
    big: Workspace
    mix: list[Workspace]
    one: dict[int, Workspace]  # a fresh workspace per worker count: creates into one workspace
    spread: dict[int, list[Workspace]]  # fresh workspaces per worker count: creates over 20 workspaces
    cursors: dict[str, Cursor] = dataclasses.field(default_factory=dict)
    measurements: dict[str, dict[str, Any]] = dataclasses.field(default_factory=dict)
    next_n: int = 1  # the next user number for "{n}" creates: no two runs create the same userName
    runs: int = 0
    began: float = dataclasses.field(default_factory=time.monotonic)

    def cursor(self, ws: Workspace) -> Cursor:
        return self.cursors.setdefault(ws.id, Cursor(ws))

    def say(self, text: str) -> None:
        print(f"bench: [{time.monotonic() - self.began:5.0f} s] {text}", flush=True)


def key(workload: str, system: str, workers: int) -> str:
    return f"{workload}/{system}/{workers}w"


def measure(
    b: Bench,
    name: str,
    base: str,
    pid: int,
    lines: Callable[[int], list[Line]],
    *,
    cycle: bool = False,
    expect: str = "",
    wrote: bool = True,
    rate_cap: int | None = None,
) -> None:
    """Warm-up, then the measured run, of the pool ``lines(count)`` (``count``: how many lines a pool that
    is sent once needs for the run's length at ``write_rate_cap``; a cycling pool is sent again and again).
    The result goes to ``b.measurements[name]``; a failure is recorded there and the bench goes on."""
    p = b.profile
    try:
        result: dict[str, Any] = {}
        for label, seconds in (("warmup", p.warmup), ("measured", p.seconds)):
            b.runs += 1
            pool = b.home / f"pool-{b.runs}.txt"
            cap = min(rate_cap or p.write_rate_cap, p.write_rate_cap)
            count = pools.write(pool, lines(max(50, round(seconds * cap))))
            run = harness.Run(pool, seconds, p.connections, cycle, b.next_n, expect)
            r = harness.run_wrk(b.wrk, base, run, pid, b.pg_pid)
            b.next_n += r["sent"] + 1
            r["pool_lines"] = count
            if label == "warmup":
                result["warmup"] = {k: r[k] for k in ("seconds", "rps", "errors", "first_error")}
            else:
                result.update(r)
        if wrote:
            result["settle_s"] = settle(b, pid)
        b.measurements[name] = result
        cut = " (pool used up: ran {:.1f} s)".format(result["seconds"]) if result["exhausted"] else ""
        if result.get("settle_s", 0) >= p.settle_cap:
            cut += f"; still busy {p.settle_cap:g} s after (its notifications): the next run starts behind"
        b.say(
            f"  {name}: {result['rps']:.0f} req/s, p99 {result['p99_ms']:.1f} ms, "
            f"{result['errors']} errors{cut}"
            + (f"; first error: {result['first_error']}" if result["first_error"] else "")
        )
    except Exception as error:  # recorded and reported; the other measurements go on
        b.measurements[name] = {"error": f"{type(error).__name__}: {error}"}
        b.say(f"  {name}: FAILED: {error}")
        traceback.print_exc()


def settle(b: Bench, pid: int) -> float:
    """Seconds until the app and PostgreSQL use less than IDLE_PERCENT of a core over half a second (the
    outbox runner has sent the run's notifications), at most ``settle_cap``."""
    started = time.monotonic()
    while time.monotonic() - started < b.profile.settle_cap:
        before = harness.cpu_now(pid, b.pg_pid)
        time.sleep(0.5)
        after = harness.cpu_now(pid, b.pg_pid)
        busy = 100 * sum(after[k] - before[k] for k in ("app", "postgres")) / 0.5
        if busy < IDLE_PERCENT:
            break
    return round(time.monotonic() - started, 1)


def ceilings(b: Bench, workers: int) -> None:
    """The one-INSERT ceiling on the create body, the one-SELECT ceiling on the look-ups."""
    python, env = str(harness.BIN / "python"), b.ceiling_env
    b.say(f"{workers} worker(s): one-INSERT ceiling ...")
    write = [python, str(harness.BENCH / "ceiling_app.py")]
    with harness.server("ceiling", write, env, workers, b.home) as (u, pid):
        body = pools.creates("/ingest", [("", "ceiling.bench.test")])
        measure(b, key("create", "ceiling", workers), u, pid, lambda _: body, cycle=True, wrote=False)
    b.say(f"{workers} worker(s): one-SELECT ceiling ...")
    read = [python, str(harness.BENCH / "read_ceiling_app.py")]
    with harness.server("read-ceiling", read, env, workers, b.home) as (u, pid):
        gets = pools.lookups("/lookup", "", b.big.domain, b.big.users, 20_000)
        name = key("lookup", "ceiling", workers)
        measure(b, name, u, pid, lambda _: gets, cycle=True, expect=CEILING_ROW, wrote=False)


def ours(b: Bench, workers: int) -> None:
    """Every workload against one ``scimledger serve`` with ``workers`` workers."""
    b.say(f"{workers} worker(s): scimledger serve ...")
    big, mix, one, spread = b.big, b.mix, b.one[workers], b.spread[workers]
    command = [str(harness.BIN / "scimledger"), "serve"]
    with harness.server("scimledger", command, b.env, workers, b.home) as (u, pid):
        gets = pools.lookups(SCIM, big.token, big.domain, big.users, 20_000)
        name = key("lookup", "ours", workers)
        measure(b, name, u, pid, lambda _: gets, cycle=True, expect=OURS_ONE_RESULT, wrote=False)
        creates = pools.creates(SCIM, [(one.token, one.domain)])
        measure(b, key("create", "ours", workers), u, pid, lambda _: creates, cycle=True)
        spreads = pools.creates(SCIM, [(ws.token, ws.domain) for ws in spread])
        measure(b, key("create-spread", "ours", workers), u, pid, lambda _: spreads, cycle=True)
        c = b.cursor(big)
        measure(b, key("deactivate", "ours", workers), u, pid, lambda n: pools.deactivations(SCIM, c, n))
        measure(b, key("group-add", "ours", workers), u, pid, lambda n: pools.group_adds(SCIM, c, n))
        cursors = [b.cursor(ws) for ws in mix]
        entra, okta = key("entra", "ours", workers), key("okta", "ours", workers)
        measure(b, entra, u, pid, lambda n: pools.mix(SCIM, cursors, n // 5, "entra"), rate_cap=MIX_RATE_CAP)
        measure(b, okta, u, pid, lambda n: pools.mix(SCIM, cursors, n // 4, "okta"), rate_cap=MIX_RATE_CAP)


def peer(b: Bench) -> dict[str, Any]:
    """``scim2-server`` (one worker: its storage is the process's memory), seeded in-process with
    ``peer_users`` users and ``peer_groups`` empty groups: creates, look-ups, group member adds."""
    p = b.profile
    token, domain = "bench-peer-token", "peer.bench.test"
    seeded = b.home / "peer-seed.json"
    args = [
        str(harness.BIN / "python"),
        str(harness.BENCH / "peer_app.py"),
        "--token",
        token,
        "--seed-users",
        str(p.peer_users),
        "--seed-groups",
        str(p.peer_groups),
        "--domain",
        domain,
        "--seed-out",
        str(seeded),
    ]
    b.say(f"1 worker: peer scim2-server (seeding {p.peer_users:,} users in-process) ...")
    with harness.server("peer", args, b.ceiling_env, 1, b.home) as (u, pid):
        ids = json.loads(seeded.read_text())
        ws = Workspace("peer", token, "", domain, p.peer_users, ids["users"], ids["groups"], 0)
        b.next_n = max(b.next_n, p.peer_users + 1)
        creates = pools.creates(PEER_API, [(token, domain)])
        measure(b, key("create", "peer", 1), u, pid, lambda _: creates, cycle=True)
        gets = pools.lookups(PEER_API, token, domain, p.peer_users, 20_000)
        measure(
            b,
            key("lookup", "peer", 1),
            u,
            pid,
            lambda _: gets,
            cycle=True,
            expect=PEER_ONE_RESULT,
            wrote=False,
        )
        c = Cursor(ws)
        measure(b, key("group-add", "peer", 1), u, pid, lambda n: pools.group_adds(PEER_API, c, n))
    return {"users": p.peer_users, "groups": p.peer_groups, "seeding": "in-process, its own create path"}
