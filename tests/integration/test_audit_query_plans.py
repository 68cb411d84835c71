"""Every audit log filter is an index scan that reads about one page, not the workspace's events (issue 7,
"Audit API"; docs/architecture.md "Queries").

The log is filled with 60,000 events, 42,000 of them in our workspace: one member named by a third of the
seat and membership events, one team by a third of the memberships, three token actors, rare admin and
system sources, a request id per three events, one second apart. The exact SQL the app runs
(``log_query.page_query`` for a page, ``export.batch_query`` for an export batch) is run under
``EXPLAIN ANALYZE`` as the app plans it (for the values at hand, never a generic plan): no sequential
scan, the expected index, and no plan node touching more than a few pages' rows.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import AsyncIterator, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any
from uuid import UUID, uuid4

import asyncpg
import pytest

from scimledger import pg
from scimledger.audit import export, log_query
from scimledger.audit.log_query import AuditFilters
from tests.conftest import with_database

EVENTS = 60_000
OURS = uuid4()
START = datetime(2025, 1, 1, tzinfo=UTC)
LIMIT = log_query.DEFAULT_LIMIT
MAX_ROWS_TOUCHED = 1_500  # per plan node: a few pages, against 42,000 events of the workspace


def md5_uuid(text: str) -> UUID:
    return UUID(hashlib.md5(text.encode()).hexdigest())


BUSY_MEMBER = md5_uuid("m0")
BIG_TEAM = md5_uuid("t0")
TOKEN = str(md5_uuid("a1"))

FILL = """
INSERT INTO events (position, workspace_id, stream_id, stream_version, event_type, state, data, metadata,
                    recorded_at, prev_hash, hash)
SELECT g, w, stream, g, type, convert_to(d::text, 'UTF8'), d, m,
       $2::timestamptz + g * interval '1 second', '\\x00'::bytea, '\\x00'::bytea
  FROM (
    SELECT g, w, m,
           CASE g % 5 WHEN 0 THEN w
                      WHEN 1 THEN md5('membership' || g)::uuid
                      WHEN 2 THEN md5('m' || (g / 5) % 2000)::uuid
                      WHEN 3 THEN md5('claim' || g)::uuid
                      ELSE md5('t' || (g / 5) % 50)::uuid END AS stream,
           CASE g % 5 WHEN 0 THEN 'SeatAssigned' WHEN 1 THEN 'TeamMemberAdded'
                      WHEN 2 THEN 'MemberAttributesChanged' WHEN 3 THEN 'UniquenessClaimed'
                      ELSE CASE WHEN g % 500 = 4 THEN 'TeamArchived' ELSE 'TeamRenamed' END END AS type,
           CASE g % 5 WHEN 0 THEN jsonb_build_object('member_id', member)
                      WHEN 1 THEN jsonb_build_object('team_id', team, 'member_id', member)
                      WHEN 2 THEN jsonb_build_object('user_name', 'user' || g)
                      WHEN 3 THEN jsonb_build_object('kind', 'userName', 'value', 'user' || g)
                      ELSE jsonb_build_object('display_name', 'Team ' || g) END AS d
      FROM (
        SELECT g,
               CASE WHEN g % 10 < 7 THEN $1::uuid ELSE md5('w' || g % 7)::uuid END AS w,
               md5('m' || CASE WHEN g % 3 = 0 THEN 0 ELSE (g / 5) % 2000 END)::uuid::text AS member,
               md5('t' || CASE WHEN g % 3 = 0 THEN 0 ELSE (g / 5) % 50 END)::uuid::text AS team,
               jsonb_build_object(
                   'actor', jsonb_build_object(
                       'kind', 'token', 'name', 'token',
                       'id', CASE WHEN g % 50 = 6 THEN 'admin-key' ELSE md5('a' || g % 3)::uuid::text END),
                   'source',
                   CASE WHEN g % 1000 = 2 THEN 'system' WHEN g % 50 = 6 THEN 'admin' ELSE 'scim' END,
                   'request_id', 'req-' || g / 3,
                   'user_agent', 'okta', 'client_addr', '127.0.0.1') AS m
          FROM generate_series($4::int, $3::int) AS g) AS base) AS shaped
"""


@pytest.fixture(scope="module")
async def filled(server_url: str, template_database: str) -> AsyncIterator[asyncpg.Pool]:
    """One database for the module (filling it takes seconds), dropped at the end."""
    name = f"scimledger_plans_{uuid4().hex[:16]}"
    admin = await asyncpg.connect(server_url)
    try:
        await admin.execute(f'CREATE DATABASE "{name}" TEMPLATE "{template_database}"')
        pool = await pg.create_pool(with_database(server_url, name), min_size=1, max_size=2)
        try:
            await pool.execute(FILL, OURS, START, EVENTS, 1)
            await pool.execute("VACUUM ANALYZE events")
            yield pool
        finally:
            await pool.close()
            await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
    finally:
        await admin.close()


def at(seconds: int) -> datetime:
    return START + timedelta(seconds=seconds)


async def analysed(
    pool: asyncpg.Pool, sql: str, args: list[Any], *, in_index_order: bool = False
) -> dict[str, Any]:
    """The executed plan (EXPLAIN ANALYZE, JSON) under the planner settings the app runs its audit queries
    with: planned for these values (never a generic plan; see the last test)."""
    async with pool.acquire() as conn, conn.transaction():
        await conn.execute(log_query.planner_settings(in_index_order=in_index_order))
        text = await conn.fetchval(f"EXPLAIN (ANALYZE, FORMAT JSON) {sql}", *args)
    explained = json.loads(text) if isinstance(text, str) else text  # the pool may decode json itself
    plan: dict[str, Any] = explained[0]["Plan"]
    return plan


def nodes(plan: dict[str, Any]) -> Iterator[dict[str, Any]]:
    yield plan
    for child in plan.get("Plans", []):
        yield from nodes(child)


def touched(node: dict[str, Any]) -> int:
    """Rows a node produced plus the rows it read and threw away."""
    return int(
        node.get("Actual Rows", 0) * node.get("Actual Loops", 1)
        + node.get("Rows Removed by Filter", 0)
        + node.get("Rows Removed by Index Recheck", 0)
    )


WALK = "events_pkey|events_workspace_position"  # walking the log in position order: fine for a common value


def assert_index_scan(plan: dict[str, Any], indexes: tuple[str, ...], *, bounded: bool = True) -> None:
    """No sequential scan; each of ``indexes`` (``a|b``: either) used; no node touching more than a few
    pages' rows (combined filters whose values seldom meet may read more: only their plan is checked)."""
    found = list(nodes(plan))
    used = {n.get("Index Name") for n in found}
    assert "Seq Scan" not in {n["Node Type"] for n in found}, json.dumps(plan, indent=1)
    for alternatives in indexes:
        assert used & set(alternatives.split("|")), (alternatives, used)
    worst = max(found, key=touched)
    assert not bounded or touched(worst) <= MAX_ROWS_TOUCHED, json.dumps(worst, indent=1)


SINGLE: list[tuple[str, dict[str, Any], int | None, tuple[str, ...]]] = [
    ("no filter", {}, None, (WALK,)),
    ("no filter, desc, mid-log", {"order": "desc"}, 30_000, (WALK,)),
    ("member", {"member": BUSY_MEMBER}, None, ("events_member", "events_stream_version_key")),
    ("member, mid-log", {"member": BUSY_MEMBER}, 30_000, ("events_member",)),
    ("member, desc", {"member": BUSY_MEMBER, "order": "desc"}, None, ("events_member",)),
    ("team", {"team": BIG_TEAM}, None, ("events_team", "events_stream_version_key")),
    ("team, desc, mid-log", {"team": BIG_TEAM, "order": "desc"}, 30_000, ("events_team",)),
    ("common actor", {"actor": TOKEN}, None, (f"events_actor|{WALK}",)),
    ("rare actor", {"actor": "admin-key"}, None, ("events_actor",)),
    ("rare actor, desc, mid-log", {"actor": "admin-key", "order": "desc"}, 30_000, ("events_actor",)),
    ("source system", {"source": "system"}, None, ("events_source",)),
    ("source admin, desc", {"source": "admin", "order": "desc"}, None, ("events_source",)),
    ("common source", {"source": "scim"}, None, (f"events_source|{WALK}",)),
    ("common type", {"types": ("TeamRenamed",)}, 30_000, (f"events_workspace_type|{WALK}",)),
    ("rare type", {"types": ("TeamArchived",)}, None, ("events_workspace_type",)),
    ("rare type, desc", {"types": ("TeamArchived",), "order": "desc"}, None, ("events_workspace_type",)),
    ("two types", {"types": ("TeamArchived", "SeatAssigned")}, None, ("events_workspace_type",)),
    ("internal type", {"types": ("UniquenessClaimed",), "include_internal": True}, None, ()),
    ("since", {"since": at(45_000)}, None, ("events_recorded_at",)),
    ("since and until", {"since": at(20_000), "until": at(20_500)}, None, ("events_recorded_at",)),
    ("until, desc", {"until": at(25_000), "order": "desc"}, None, ("events_recorded_at",)),
    ("request id", {"request_id": "req-10000"}, None, ("events_request",)),
]
COMBINED: list[tuple[str, dict[str, Any], int | None, tuple[str, ...]]] = [
    (
        "member, type, since, desc",
        {"member": BUSY_MEMBER, "types": ("SeatAssigned",), "since": at(10_000), "order": "desc"},
        50_000,
        ("events_member",),
    ),
    ("team and actor", {"team": BIG_TEAM, "actor": TOKEN}, None, ("events_team",)),
    (
        "source and rare type",
        {"source": "scim", "types": ("TeamArchived",)},
        None,
        ("events_workspace_type",),
    ),
]


@pytest.mark.parametrize(("case", "fields", "after", "indexes"), SINGLE, ids=[c[0] for c in SINGLE])
async def test_a_page_of_each_filter_is_an_index_scan_of_about_one_page(
    filled: asyncpg.Pool, case: str, fields: dict[str, Any], after: int | None, indexes: tuple[str, ...]
) -> None:
    filters = AuditFilters(workspace_id=OURS, **fields)
    sql, args = log_query.page_query(filters, after, LIMIT + 1)  # what fetch_page runs, as it runs it
    in_order = log_query.walks_an_index(filters)
    assert_index_scan(await analysed(filled, sql, args, in_index_order=in_order), indexes)


@pytest.mark.parametrize(("case", "fields", "after", "indexes"), COMBINED, ids=[c[0] for c in COMBINED])
async def test_combined_filters_are_index_scans(
    filled: asyncpg.Pool, case: str, fields: dict[str, Any], after: int | None, indexes: tuple[str, ...]
) -> None:
    filters = AuditFilters(workspace_id=OURS, **fields)
    sql, args = log_query.page_query(filters, after, LIMIT + 1)
    in_order = log_query.walks_an_index(filters)
    assert_index_scan(await analysed(filled, sql, args, in_index_order=in_order), indexes, bounded=False)


async def test_the_fill_gives_each_filter_rows_to_find(filled: asyncpg.Pool) -> None:
    """The cases above would prove little if their filters matched nothing in our workspace."""
    busy = ({"member": BUSY_MEMBER}, {"team": BIG_TEAM}, {"actor": TOKEN}, {"types": ("TeamArchived",)})
    rare = ({"source": "system"}, {"source": "admin"}, {"actor": "admin-key"}, {"request_id": "req-10000"})
    for fields in (*busy, *rare):
        page = await log_query.fetch_page(filled, AuditFilters(workspace_id=OURS, **fields), None, LIMIT)
        assert len(page.rows) == LIMIT if fields in busy else page.rows, fields
    ours = await filled.fetchval("SELECT count(*) FROM events WHERE workspace_id = $1", OURS)
    assert ours == EVENTS * 7 // 10


@pytest.mark.parametrize(
    "selected",
    [export.ExportRange(OURS), export.ExportRange(OURS, since=at(15_000), until=at(45_000))],
    ids=["whole", "since-until"],
)
async def test_an_export_batch_is_an_index_scan_of_one_batch(
    filled: asyncpg.Pool, selected: export.ExportRange
) -> None:
    upto = await export.last_position(filled, selected)
    sql, args = export.batch_query(selected, upto, 25_000, export.BATCH)
    plan = await analysed(filled, sql, args, in_index_order=True)
    found = list(nodes(plan))
    assert "Seq Scan" not in {n["Node Type"] for n in found}
    assert {n.get("Index Name") for n in found} & set(WALK.split("|"))
    assert max(touched(n) for n in found) <= export.BATCH * 3 // 2


async def test_audit_queries_are_planned_for_their_values_even_where_generic_plans_are_preferred(
    filled: asyncpg.Pool,
) -> None:
    """A generic plan cannot tell a rare source from a common one (it may walk the workspace looking for
    'system'). PostgreSQL may switch a reused statement to one, or a server may prefer them
    (``plan_cache_mode``); the app's audit queries are planned for their values all the same."""
    filters = AuditFilters(workspace_id=OURS, source="system")
    sql, _ = log_query.page_query(filters, None, LIMIT + 1)
    async with filled.acquire() as conn:
        await conn.execute("SET plan_cache_mode = force_generic_plan")
        try:
            for _ in range(6):
                page = await log_query.fetch_page(conn, filters, None, LIMIT)
            plans = await conn.fetchrow(
                "SELECT generic_plans, custom_plans FROM pg_prepared_statements WHERE statement = $1", sql
            )
        finally:
            await conn.execute("RESET plan_cache_mode")
    assert len(page.rows) == EVENTS // 1000
    assert plans is not None
    assert plans["generic_plans"] == 0
    assert plans["custom_plans"] >= 6


BURST = """
INSERT INTO events (position, workspace_id, stream_id, stream_version, event_type, state, data, metadata,
                    recorded_at, prev_hash, hash)
SELECT g, $1, $1, g, 'SeatAdded', '{"count": 1}', '{"count": 1}', '{"source": "system"}', now(),
       '\\x00'::bytea, '\\x00'::bytea
  FROM generate_series(1, $2::int) AS g
"""


def stale_cases() -> list[tuple[str, Any]]:
    def batch() -> tuple[str, list[Any]]:
        return export.batch_query(export.ExportRange(OURS), 100_000, 50_000, export.BATCH)

    def page(**fields: Any) -> Any:
        return lambda: log_query.page_query(AuditFilters(workspace_id=OURS, **fields), 50_000, LIMIT + 1)

    return [("export batch", batch), ("page", page()), ("page by type", page(types=("SeatAdded",)))]


@pytest.mark.parametrize(("case", "query"), stale_cases(), ids=[c[0] for c in stale_cases()])
async def test_batches_and_pages_walk_an_index_even_before_the_log_is_analysed(
    pool: asyncpg.Pool, case: str, query: Any
) -> None:
    """Before a burst of appends is analysed, the planner believes the log nearly empty: collecting and
    sorting every remaining row then looks cheaper than walking the index, and each batch of an export or
    page would read all the rest of the workspace (on PostgreSQL 15: 50,000 rows for 1,000)."""
    await pool.execute("ALTER TABLE events SET (autovacuum_enabled = false)")  # keep the statistics stale
    await pool.execute(BURST, OURS, 100_000)
    sql, args = query()
    found = list(nodes(await analysed(pool, sql, args, in_index_order=True)))
    assert not {"Seq Scan", "Sort"} & {n["Node Type"] for n in found}, found
    assert max(touched(n) for n in found) <= export.BATCH * 3 // 2
