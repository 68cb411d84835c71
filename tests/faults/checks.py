"""What the fault suite checks after each scenario (issue 8, "Fault suite"). Each request's effect is found
in the log by its ``X-Request-Id`` (kept in every event's metadata); the events of one append share one
``recorded_at`` (``scimledger_append`` takes one clock reading per call), so "in the log exactly once" means
exactly one append carries the request id."""

from __future__ import annotations

import asyncio
import os
import subprocess
import sys
import tempfile
import time
from collections import Counter
from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

import asyncpg
import httpx

from tests.faults.cluster import Creds
from tests.faults.load import TIMEOUT, Outcome
from tests.faults.processes import MASTER_KEY

CLI = [sys.executable, "-m", "scimledger.cli"]


@dataclass(frozen=True)
class Check:
    name: str
    passed: bool
    detail: str = ""


def _sample(items: list[Any], n: int = 5) -> str:
    return ", ".join(str(x) for x in items[:n]) + (" ..." if len(items) > n else "")


async def appends_by_request(owner_url: str, outcomes: list[Outcome]) -> dict[str, int]:
    """How many appends carry each request id."""
    conn = await asyncpg.connect(owner_url)
    try:
        rows = await conn.fetch(
            """SELECT metadata->>'request_id' AS rid, count(DISTINCT recorded_at) AS appends FROM events
                WHERE metadata->>'request_id' = ANY($1::text[]) GROUP BY 1""",
            [o.request_id for o in outcomes],
        )
    finally:
        await conn.close()
    return {r["rid"]: r["appends"] for r in rows}


async def log_checks(owner_url: str, outcomes: list[Outcome]) -> list[Check]:
    """Acknowledged writes once, rejected ones never, unknown ones at most once (requests sent as one storm
    are checked together by the scenario). A resend is a request of its own, under its own request id."""
    single = [o for o in outcomes if o.together is None]
    appends = await appends_by_request(owner_url, single)

    def failing(result: str, ok: Callable[[Outcome, int], bool]) -> list[str]:
        return [
            f"{o.request_id} {o.op} {o.status}: {appends.get(o.request_id, 0)} appends"
            for o in single
            if o.result == result and not ok(o, appends.get(o.request_id, 0))
        ]

    def idempotent_resend(o: Outcome) -> bool:
        """A resent PATCH or DELETE may find its work done (the original was applied): nothing to append."""
        return o.resend_of is not None and o.op != "create_user"

    acked = failing("ok", lambda o, n: n == 1 or (n == 0 and idempotent_resend(o)))
    rejected = failing("rejected", lambda o, n: n == 0)
    unknown = failing("unknown", lambda o, n: n <= 1)
    return [
        Check("acknowledged writes in the log exactly once", not acked, _sample(acked)),
        Check("rejected requests left no event", not rejected, _sample(rejected)),
        Check("unknown requests applied at most once", not unknown, _sample(unknown)),
    ]


def no_server_errors(outcomes: list[Outcome]) -> Check:
    """No 500 (or other 5xx but 503) and no request unanswered for the client's whole timeout."""
    bad = [
        f"{o.request_id} {o.op} {o.status or o.error}"
        for o in outcomes
        if ((o.status or 0) >= 500 and o.status != 503) or o.seconds >= TIMEOUT - 0.5
    ]
    return Check("no 500s and no hangs", not bad, _sample(bad))


async def exists_once(client: httpx.AsyncClient, base: str, creds: Creds, user_name: str) -> int:
    response = await client.get(
        f"{base}/scim/v2/Users", params={"filter": f'userName eq "{user_name}"'}, headers=creds.auth
    )
    response.raise_for_status()
    return int(response.json()["totalResults"])


async def creates_exist_once(base: str, creds: dict[str, Creds], outcomes: list[Outcome]) -> Check:
    """Every resent create got 201 or 409, and its user exists exactly once."""
    resent = [o for o in outcomes if o.resend_of and o.op == "create_user"]
    bad = []
    async with httpx.AsyncClient(timeout=30) as client:
        for o in resent:
            assert o.user_name is not None
            found = await exists_once(client, base, creds[o.workspace], o.user_name)
            if o.status not in (201, 409) or found != 1:
                bad.append(f"{o.user_name}: {o.status}, found {found}")
    return Check(f"resent creates 201 or 409 and exist once ({len(resent)})", not bad, _sample(bad))


def _cli(owner_url: str, *args: str) -> subprocess.CompletedProcess[str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("SCIMLEDGER_")}
    env.update(DATABASE_URL=owner_url, SCIMLEDGER_HOME=tempfile.mkdtemp(prefix="scimledger-faults-cli-"))
    env.update(SCIMLEDGER_MASTER_KEY=MASTER_KEY)  # the servers' (issue 11)
    return subprocess.run([*CLI, *args], env=env, capture_output=True, text=True, timeout=300, check=False)


async def cli_checks(owner_url: str) -> list[Check]:
    """``scimledger projections rebuild --verify`` and ``scimledger audit verify``, as an operator would."""
    commands = {
        "projections rebuild --verify": ("projections", "rebuild", "--verify"),
        "audit verify": ("audit", "verify"),
    }
    done = await asyncio.gather(*(asyncio.to_thread(_cli, owner_url, *args) for args in commands.values()))
    return [
        Check(name, d.returncode == 0, "" if d.returncode == 0 else (d.stderr or d.stdout)[-500:].strip())
        for name, d in zip(commands, done, strict=True)
    ]


async def notifications_drained(owner_url: str, seconds: float) -> tuple[Check, dict[str, int]]:
    """Wait until every outbox row is recorded as sent (the live servers deliver them)."""
    conn = await asyncpg.connect(owner_url)
    try:
        deadline = time.monotonic() + seconds
        while True:
            counts = dict(
                await conn.fetchrow(
                    """SELECT (SELECT count(*) FROM outbox) AS outbox,
                              (SELECT count(*) FROM outbox_delivery) AS delivered,
                              (SELECT count(*) FROM outbox_delivery d WHERE NOT EXISTS (SELECT 1 FROM outbox o
                                  WHERE o.position = d.position AND o.kind = d.kind)) AS stray"""
                )
            )
            if counts["outbox"] == counts["delivered"] or time.monotonic() > deadline:
                break
            await asyncio.sleep(0.1)
    finally:
        await conn.close()
    ok = counts["outbox"] == counts["delivered"] and counts["stray"] == 0
    return Check("every notification recorded as sent once", ok, str(counts)), counts


def answers(outcomes: list[Outcome]) -> dict[str, int]:
    """How many got each status (or transport error)."""
    return dict(Counter(str(o.status or o.error) for o in outcomes).most_common())


def tally(outcomes: list[Outcome]) -> dict[str, int]:
    counts = Counter(o.result for o in outcomes)
    return {
        "requests": len(outcomes),
        "ok": counts["ok"],
        "rejected": counts["rejected"],
        "unknown": counts["unknown"],
    }
