"""Seeding through the product's own code: the real handlers, in-process (no HTTP).

Workspaces and tokens come from ``handlers.create_workspace``/``issue_token`` (what ``scimledger workspace
create`` and ``token create`` run), members from ``handlers.provision_user``, teams from ``create_team`` and
``patch_team``: the events, the inline projections, the hash chain and group commit are the server's.
``settle`` then leaves the server no background work (see there). Used by ``bench/main.py`` and
``bench/big_team.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import time
from collections.abc import Awaitable, Callable, Sequence
from typing import Any, TypeVar
from uuid import UUID

import asyncpg
import orjson
from pools import USER_SENTINEL, Workspace, add_members_body, group_body, user_body

from scimledger import handlers, pg
from scimledger.app import build_store
from scimledger.scim.patch import validate_patch_request
from scimledger.scim.users import UserInput, group_from_body, user_from_body
from scimledger.store.event_store import EventStore, Metadata

T = TypeVar("T")
OPERATOR = Metadata(actor_kind="system", actor_id="bench", actor_name="bench", source="system")


def say(text: str) -> None:
    print(f"bench: {text}", flush=True)


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
        user_agent="bench (seeding)",
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
    """POST /Users for each n through ``handlers.provision_user`` (group commit on the workspace); the
    member ids in the order of ``numbers``."""
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


async def make_workspace(store: EventStore, name: str, domain: str) -> Workspace:
    """``scimledger workspace create --domain D --seats 1000000 --auto-seats`` and ``token create``."""
    created = await handlers.create_workspace(
        store,
        handlers.CreateWorkspace(
            name=name, domains=(domain,), seats=1_000_000, automatic_seat_assignment=True
        ),
        OPERATOR,
    )
    token = await handlers.issue_token(store, handlers.IssueToken(created.workspace_id, "bench"), OPERATOR)
    return Workspace(str(created.workspace_id), token.token, str(token.token_id), domain)


async def fill(store: EventStore, ws: Workspace, users: int, groups: int, group_members: int) -> Workspace:
    """``users`` members (user-1 ..), then ``groups`` teams ``group <k>`` holding the first
    ``group_members`` of them."""
    meta = seed_metadata(ws.token_id)
    ids, _ = await provision(store, UUID(ws.id), meta, ws.domain, range(1, users + 1), ws.domain)
    ws.users, ws.user_ids = users, ids
    for k in range(groups):
        team = await create_team(store, UUID(ws.id), meta, f"group {k}", ids[:group_members])
        ws.groups.append(str(team))
    ws.group_members = group_members
    return ws


def fill_all(url: str, jobs: list[tuple[Workspace, int, int, int]]) -> list[Workspace]:
    """A worker process: ``fill`` each (workspace, users, groups, group_members), one after the other."""

    async def work(store: EventStore) -> list[Workspace]:
        return [await fill(store, ws, users, groups, members) for ws, users, groups, members in jobs]

    return with_store(url, work)


def with_store(url: str, work: Callable[[EventStore], Awaitable[T]]) -> T:
    """``work`` on a store of the real app's kind (``build_store``: inline projections), migrating first."""

    async def main() -> T:
        pool = await pg.create_pool(url)
        try:
            async with pool.acquire() as conn:
                await pg.migrate(conn)
            return await work(build_store(pool))
        finally:
            await pool.close()

    return asyncio.run(main())


async def settle(url: str) -> dict[str, Any]:
    """No background work left for the server: the outbox projection (the only lagging one) moved past the
    seeded log, tables vacuumed and analyzed, a checkpoint.

    The seeding's own notifications are not queued: applying the outbox to 100,000 provisionings and
    sending 200,000 mails one transaction each takes minutes here, and the benchmark measures requests,
    not the seeding's mail. The tracking row moves as the runner moves it when nothing is left below the
    horizon (``projections.runner.apply_batch``). The measured requests' notifications are queued and
    sent by the server under test, as always."""
    from projections import outbox
    from projections.runner import track
    from scimledger.store.recorder import LogCursor, horizon

    conn = await asyncpg.connect(url)
    try:
        await track(conn, outbox.name, LogCursor(await horizon(conn), 0))
        started = time.monotonic()
        await conn.execute("VACUUM (ANALYZE)")
        vacuum = time.monotonic() - started
        with contextlib.suppress(asyncpg.InsufficientPrivilegeError):
            await conn.execute("CHECKPOINT")
        return {
            "seeding_notifications": "skipped (outbox tracking moved past the seeded log)",
            "vacuum_analyze_s": round(vacuum, 1),
            "checkpoint_s": round(time.monotonic() - started - vacuum, 1),
        }
    finally:
        await conn.close()


async def prepare_ceilings(url: str, ws: Workspace, app_role: str | None) -> int:
    """The ceilings' tables: ``bench_ceiling`` (empty) and ``bench_read_ceiling``, the userNames and SCIM
    resources of ``ws``'s members from the read model; readable and writable by ``app_role``, the role
    the apps connect as. How many rows the read ceiling has."""
    from ceiling_app import TABLE
    from read_ceiling_app import SCHEMA
    from read_ceiling_app import TABLE as READ_TABLE

    conn = await asyncpg.connect(url)
    try:
        await conn.execute(f"DROP TABLE IF EXISTS {TABLE}, {READ_TABLE}")
        await conn.execute(f"CREATE TABLE {TABLE} (id bigserial PRIMARY KEY, doc jsonb NOT NULL)")
        await conn.execute(SCHEMA)
        await conn.execute(
            f"""INSERT INTO {READ_TABLE} (user_name, resource)
                SELECT user_name, resource FROM scim_users WHERE workspace_id = $1""",
            UUID(ws.id),
        )
        await conn.execute(f"VACUUM (ANALYZE) {READ_TABLE}")
        if app_role:
            await conn.execute(f"GRANT SELECT, INSERT ON {TABLE}, {READ_TABLE} TO {app_role}")
            await conn.execute(f"GRANT USAGE ON SEQUENCE {TABLE}_id_seq TO {app_role}")
        return int(await conn.fetchval(f"SELECT count(*) FROM {READ_TABLE}"))
    finally:
        await conn.close()
