"""The five scenarios of the fault suite (issue 8, "Fault suite"). Each gets a fresh database on the suite's
own PostgreSQL, real ``scimledger serve`` processes (least-privilege role, rate limits off), a request cap,
a deadline and a seeded random generator, and returns a Report: the tally of its requests, the checks and
the figures it measured."""

from __future__ import annotations

import asyncio
import random
import time
from collections import defaultdict
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx

from scimledger import handlers, pg
from scimledger.app import build_store
from tests.faults import checks
from tests.faults.checks import Check
from tests.faults.cluster import OPERATOR, Cluster, Creds, make_workspaces
from tests.faults.load import GROUP, MixedLoad, Outcome, Recorder, patch_body, user_body
from tests.faults.processes import ServeProcess
from tests.faults.smtp import SmtpReceiver


@dataclass(frozen=True)
class Options:
    seed: int
    requests: int  # the cap on requests sent by the load (resends come on top)
    deadline: float  # seconds for the load of one scenario (and, again, for its waits)
    work_dir: Path  # server logs
    outage: float = 3.0  # seconds PostgreSQL stays down in "outage"


@dataclass
class Report:
    scenario: str
    seconds: float = 0.0
    tally: dict[str, int] = field(default_factory=dict)
    resent: int = 0
    checks: list[Check] = field(default_factory=list)
    figures: dict[str, Any] = field(default_factory=dict)

    @property
    def passed(self) -> bool:
        return all(c.passed for c in self.checks)

    def as_json(self) -> dict[str, Any]:
        return {
            "scenario": self.scenario,
            "seconds": round(self.seconds, 1),
            **self.tally,
            "resent": self.resent,
            "passed": self.passed,
            "checks": [c.__dict__ for c in self.checks],
            "figures": self.figures,
        }


def once_at(threshold: int, action: Callable[[], Awaitable[None]]) -> Callable[[int], Awaitable[None]]:
    """An ``on_sent`` hook that runs ``action`` once, when ``threshold`` requests were sent."""
    fired = False

    async def hook(sent: int) -> None:
        nonlocal fired
        if sent >= threshold and not fired:
            fired = True
            await action()

    return hook


async def until(condition: Callable[[], Awaitable[bool]], seconds: float) -> bool:
    """Poll ``condition`` every 2 ms for up to ``seconds``; returns whether it came true."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if await condition():
            return True
        await asyncio.sleep(0.002)
    return False


class Run:
    """One scenario's database, workspaces, servers and recorder, and the checks every scenario shares."""

    def __init__(self, name: str, cluster: Cluster, options: Options) -> None:
        self.name, self.cluster, self.options = name, cluster, options
        self.rng = random.Random(f"{options.seed}-{name}")
        self.started = time.monotonic()
        self.recorder = Recorder(name)
        self.report = Report(name)
        self.servers: list[ServeProcess] = []
        self.owner_url = self.app_url = ""
        self.workspaces: list[Creds] = []

    async def prepare(self, workspaces: int) -> None:
        self.owner_url, self.app_url = await self.cluster.new_database()
        self.workspaces = await make_workspaces(self.owner_url, workspaces)

    async def serve(self, name: str, env: dict[str, str] | None = None, *, wait: bool = True) -> ServeProcess:
        """A server on this run's database; ``wait=False``: launched, not yet answering."""
        server = ServeProcess(
            self.app_url,
            name=f"{self.name}-{name}",
            env={"SCIMLEDGER_MIGRATE_URL": self.owner_url, **(env or {})},
            log_dir=self.options.work_dir,
        )
        self.servers.append(server)
        self.report.figures.setdefault("ready_seconds", []).append(
            round(await asyncio.to_thread(server.start), 2)
        )
        return server

    def load(self, urls: list[str]) -> MixedLoad:
        return MixedLoad(
            self.recorder,
            self.workspaces,
            urls,
            self.rng,
            requests=self.options.requests,
            deadline=time.monotonic() + self.options.deadline,
        )

    @property
    def creds(self) -> dict[str, Creds]:
        return {c.id: c for c in self.workspaces}

    async def resend_unknown(self) -> None:
        """Resend every request whose outcome is unknown, once."""
        unknown = [o for o in self.recorder.outcomes if o.result == "unknown" and o.together is None]
        async with self.recorder.client() as client:
            for original in unknown:
                await self.recorder.resend(client, self.creds[original.workspace], original)
        self.report.resent = len(unknown)

    async def finish(self, *extra: Check, drain: bool = True) -> Report:
        """The shared checks; stops the servers first where the checks need a quiet log."""
        live = [s for s in self.servers if s.running]
        if live:
            self.report.checks.append(
                await checks.creates_exist_once(live[0].url, self.creds, self.recorder.outcomes)
            )
            if drain:
                check, counts = await checks.notifications_drained(self.owner_url, self.options.deadline)
                self.report.checks.append(check)
                self.report.figures["notifications"] = counts
        for server in self.servers:
            await asyncio.to_thread(server.stop)
        outcomes = self.recorder.outcomes
        self.report.checks += [
            *extra,
            *await checks.log_checks(self.owner_url, outcomes),
            checks.no_server_errors(outcomes),
            *await checks.cli_checks(self.owner_url),
        ]
        self.report.tally = checks.tally(outcomes)
        self.report.figures["answers"] = checks.answers(outcomes)
        self.report.seconds = time.monotonic() - self.started
        return self.report

    def stop_all(self) -> None:
        for server in self.servers:
            server.kill()


async def kill_during_load(cluster: Cluster, options: Options) -> Report:
    """(1) kill -9 of the server at a random moment of a mixed load over several workspaces; restart; resend
    the unknown requests once."""
    run = Run("kill", cluster, options)
    await run.prepare(workspaces=3)
    server = await run.serve("a")
    load = run.load([server.url])

    async def strike() -> None:
        run.report.figures["killed_after_requests"] = run.recorder.count()
        server.kill()
        run.report.figures["restart_seconds"] = round(await asyncio.to_thread(server.start), 2)

    load.on_sent = once_at(run.rng.randint(options.requests // 5, options.requests * 4 // 5), strike)
    await load.run()
    await run.resend_unknown()
    return await run.finish()


async def database_outage(cluster: Cluster, options: Options) -> Report:
    """(2) PostgreSQL stopped (immediate) mid-load and started again, the app left running: 503 with
    Retry-After meanwhile, quickly; then it recovers by itself."""
    run = Run("outage", cluster, options)
    await run.prepare(workspaces=3)
    server = await run.serve("a")
    pid = server.proc.pid if server.proc else None
    load, window = run.load([server.url]), {}

    async def strike() -> None:
        window["stop"] = time.monotonic() - run.recorder.t0
        await asyncio.to_thread(cluster.stop_immediately)
        await asyncio.sleep(options.outage)
        await cluster.start_again()
        window["start"] = time.monotonic() - run.recorder.t0

    load.on_sent = once_at(run.rng.randint(options.requests // 5, options.requests * 2 // 5), strike)
    await load.run()
    outcomes = run.recorder.outcomes
    inside = [
        o
        for o in outcomes
        if window and window["stop"] <= o.started and o.started + o.seconds <= window["start"]
    ]
    wrong = [
        f"{o.request_id} {o.status or o.error} {o.seconds:.2f}s"
        for o in inside
        if o.status != 503 or o.retry_after is None or o.seconds > 2.0
    ]
    after = [o for o in outcomes if window and o.result == "ok" and o.started >= window.get("start", 0)]
    recovered = min((o.started + o.seconds - window["start"] for o in after), default=None)
    run.report.figures.update(
        outage_seconds=round(window["start"] - window["stop"], 2) if window else None,
        answered_during_outage=len(inside),
        slowest_503_seconds=round(max((o.seconds for o in inside), default=0), 3),
        recovered_after_seconds=None if recovered is None else round(recovered, 2),
    )
    await run.resend_unknown()  # commits in doubt
    same_process = (
        server.running and server.proc is not None and server.proc.pid == pid and server.starts == 1
    )
    return await run.finish(
        Check(
            "outage answered 503 + Retry-After within 2 s", bool(inside) and not wrong, checks._sample(wrong)
        ),
        Check("recovered by itself (same process)", recovered is not None and same_process, f"{recovered}"),
    )


async def duplicate_storms(cluster: Cluster, options: Options) -> Report:
    """(3) Duplicate delivery and retry storms, in rounds: the same create 20 times at once; a client that
    times out and retries; the same member add from five clients at once."""
    run = Run("storms", cluster, options)
    await run.prepare(workspaces=2)
    server = await run.serve("a")
    rec, rng, deadline = run.recorder, run.rng, time.monotonic() + options.deadline
    users, groups = f"{server.url}/scim/v2/Users", f"{server.url}/scim/v2/Groups"
    member_adds: list[tuple[Creds, str, str, str]] = []
    async with rec.client() as client:
        n = 0
        while rec.count() < options.requests and time.monotonic() < deadline:
            creds, n = rng.choice(run.workspaces), n + 1
            name = f"storm-{n}@example.com"
            await asyncio.gather(
                *(
                    rec.send(
                        client,
                        creds,
                        "create_user",
                        "POST",
                        users,
                        user_body(name),
                        user_name=name,
                        together=f"create-{n}",
                    )
                    for _ in range(20)
                )
            )
            name = f"hasty-{n}@example.com"
            first = await rec.send(
                client,
                creds,
                "create_user",
                "POST",
                users,
                user_body(name),
                user_name=name,
                wait=0.005,
                together=f"retry-{n}",
            )
            if first.result != "ok":
                await rec.send(
                    client,
                    creds,
                    "create_user",
                    "POST",
                    users,
                    user_body(name),
                    user_name=name,
                    together=f"retry-{n}",
                    resend_of=first.request_id,
                )
            name = f"joiner-{n}@example.com"
            user = await rec.send(
                client, creds, "create_user", "POST", users, user_body(name), user_name=name
            )
            body = {"schemas": [GROUP], "displayName": f"storm team {n}"}
            group = await rec.send(client, creds, "create_group", "POST", groups, body)
            if user.result == group.result == "ok" and user.answer and group.answer:
                add = patch_body({"op": "add", "path": "members", "value": [{"value": user.answer["id"]}]})
                url = f"{groups}/{group.answer['id']}"
                await asyncio.gather(
                    *(
                        rec.send(client, creds, "add_member", "PATCH", url, add, together=f"member-{n}")
                        for _ in range(5)
                    )
                )
                member_adds.append((creds, url, user.answer["id"], f"member-{n}"))
        storms = await storm_checks(run, client, member_adds)
    run.report.figures["rounds"] = n
    run.report.figures["retried_after_timeout"] = sum(1 for o in rec.outcomes if o.resend_of)
    return await run.finish(*storms)


def expected_statuses(tag: str, statuses: list[int]) -> bool:
    """20 identical creates: one 201 and nineteen 409s; the same member add: 200 for every client."""
    if tag.startswith("create-"):
        return sorted(statuses) == [201] + [409] * 19
    if tag.startswith("member-"):
        return all(status == 200 for status in statuses)
    return True


async def storm_checks(
    run: Run, client: httpx.AsyncClient, member_adds: list[tuple[Creds, str, str, str]]
) -> list[Check]:
    """Each storm had one effect: one append over all its requests; 20 creates: one 201 and 19 409s; the
    user exists once; the member is listed once."""
    together: dict[str, list[Outcome]] = defaultdict(list)
    for o in run.recorder.outcomes:
        if o.together:
            together[o.together].append(o)
    appends = await checks.appends_by_request(
        run.owner_url, [o for group in together.values() for o in group]
    )
    once = [tag for tag, group in together.items() if sum(appends.get(o.request_id, 0) for o in group) != 1]
    statuses = [
        f"{tag}: {sorted(o.status or 0 for o in group)}"
        for tag, group in together.items()
        if not expected_statuses(tag, [o.status or 0 for o in group])
    ]
    missing = []
    for tag, group in together.items():
        if tag.startswith(("create-", "retry-")):
            name = group[0].user_name
            assert name is not None
            found = await checks.exists_once(client, run.servers[0].url, run.creds[group[0].workspace], name)
            if found != 1:
                missing.append(f"{name}: {found}")
    for creds, url, user, tag in member_adds:
        members = (await client.get(url, headers=creds.auth)).json().get("members", [])
        if [m["value"] for m in members].count(user) != 1:
            missing.append(f"{tag}: {members}")
    return [
        Check(f"each storm appended once ({len(together)} storms)", not once, checks._sample(once)),
        Check(
            "20 identical creates: one 201, nineteen 409; member adds all 200",
            not statuses,
            checks._sample(statuses),
        ),
        Check("each stormed user and membership exists once", not missing, checks._sample(missing)),
    ]


async def two_servers(cluster: Cluster, options: Options) -> Report:
    """(4) Two server processes sharing one database under load from both."""
    run = Run("two-servers", cluster, options)
    await run.prepare(workspaces=4)
    a, b = await run.serve("a"), await run.serve("b")
    await run.load([a.url, b.url]).run()
    served = {
        s.name: sum(1 for o in run.recorder.outcomes if o.url.startswith(s.url) and o.result == "ok")
        for s in (a, b)
    }
    run.report.figures["ok_by_server"] = served
    await run.resend_unknown()
    return await run.finish(Check("both servers answered", all(served.values()), str(served)))


async def kill_during_backlog(cluster: Cluster, options: Options) -> Report:
    """(5) kill -9 while the lagging outbox projection catches up on a backlog (made with no server running)
    and its notifications go to an SMTP receiver: once right after start, once mid-delivery. Afterwards
    every notification is recorded exactly once, every message arrived, and a repeat (at most one per kill)
    carries the Message-ID of the first."""
    run = Run("backlog", cluster, options)
    await run.prepare(workspaces=2)
    people = max(options.requests // 2, 10)
    await backlog(run.owner_url, run.workspaces, people)
    expected, kills = 2 * people, 0  # "added" and "welcome" each
    with SmtpReceiver(delay=0.002) as receiver:
        env = {"SCIMLEDGER_SMTP_URL": receiver.url}
        server = await run.serve("a", env, wait=False)
        conn = await asyncpg.connect(run.owner_url)
        try:
            # First kill: as soon as the outbox projection committed a batch (mid-way when the backlog takes
            # several batches of 500 events), else when the first message went out.
            head = await conn.fetchval("SELECT max(position) FROM events")

            async def started_work() -> bool:
                return bool(receiver.messages) or await projected(conn) > 0

            await until(started_work, options.deadline)
            server.kill()
            kills += 1
            run.report.figures["first_kill"] = {
                "outbox_projection_at": await projected(conn),
                "log_head": head,
                "messages": len(receiver.messages),
            }
            await asyncio.to_thread(server.start)
            # Second kill: mid-delivery, after a random number of further messages.
            second = len(receiver.messages) + run.rng.randint(1, max(expected // 3, 1))

            async def sent_more() -> bool:
                return len(receiver.messages) >= min(second, expected)

            await until(sent_more, options.deadline)
            if len(receiver.messages) < expected:
                server.kill()
                kills += 1
                run.report.figures["second_kill_after_messages"] = len(receiver.messages)
                await asyncio.to_thread(server.start)
        finally:
            await conn.close()
        drained, counts = await checks.notifications_drained(run.owner_url, options.deadline)
        messages = receiver.messages
    by_key: dict[tuple[str, str], set[str | None]] = defaultdict(set)
    for m in messages:
        by_key[m.key].add(m.message_id)
    repeats = len(messages) - len(by_key)
    run.report.figures.update(
        backlog_people=people, kills=kills, messages=len(messages), repeats=repeats, notifications=counts
    )
    report = await run.finish(
        drained,
        Check(
            f"outbox holds the backlog's {expected} notifications", counts["outbox"] == expected, str(counts)
        ),
        Check(
            "every message arrived; at most one repeat per kill",
            len(by_key) == expected and repeats <= kills,
            f"{len(by_key)} distinct, {repeats} repeats, {kills} kills",
        ),
        Check(
            "a repeat carries the same Message-ID",
            all(len(ids) == 1 and None not in ids for ids in by_key.values()),
        ),
        drain=False,
    )
    report.tally = {"requests": people, "ok": people, "rejected": 0, "unknown": 0}  # the backlog's writes
    return report


async def projected(conn: asyncpg.Connection) -> int:
    """How many events the outbox projection has committed past (0: not yet)."""
    return int(
        await conn.fetchval(
            """SELECT count(*) FROM events e, projection_tracking t
                WHERE t.projection = 'outbox' AND (e.tx, e.position) <= (t.tx, t.position)"""
        )
    )


async def backlog(owner_url: str, workspaces: list[Creds], people: int) -> None:
    """``people`` provisioned through the handlers with no server (hence no outbox runner) about."""
    pool = await pg.create_pool(owner_url, min_size=1, max_size=2)
    try:
        store = build_store(pool)
        for n in range(people):
            creds = workspaces[n % len(workspaces)]
            user_name = f"backlog-{n}@example.com"
            command = handlers.ProvisionUser(
                workspace_id=UUID(creds.id), user_name=user_name, profile={"userName": user_name}
            )
            await handlers.provision_user(store, command, OPERATOR)
    finally:
        await pool.close()


SCENARIOS: dict[str, Callable[[Cluster, Options], Awaitable[Report]]] = {
    "kill": kill_during_load,
    "outage": database_outage,
    "storms": duplicate_storms,
    "two-servers": two_servers,
    "backlog": kill_during_backlog,
}
