"""Audit log queries: filters -> parameterised SQL over ``events``, and cursors bound to their filters.

Issue 7, "Audit API": ``GET /api/v1/audit`` filters a workspace's events by member, team, actor, source,
type, time and request id, in position order, a page at a time. Every page is an index scan (section 4 of
``schema.sql``; ``tests/integration/test_audit_query_plans.py`` EXPLAINs each filter):

- a filter with one equality picks the index that leads with it (``events_actor``, ``events_source``, ...)
  and walks it in position order from the cursor, so a page reads about ``limit`` rows;
- ``member`` and ``team`` are a union of two branches (the resource's own stream, and other streams whose
  payload names it: ``data->>'member_id'`` / ``data->>'team_id'``), several ``type`` values one branch per
  type; each branch is limited and ordered on its own, then merged;
- ``since`` (inclusive) and ``until`` (exclusive) become position bounds, found with one probe each of
  ``events_recorded_at`` (``recorded_at`` never decreases in position order: ``schema.sql``, section 1), so
  they narrow whichever index a branch walks.

Rows are selected with ``entries.COLUMNS`` and shown through ``entries``; the ``data`` jsonb column only
selects rows. Cursors carry the last position shown and a digest of the filters they were made for.
"""

from __future__ import annotations

import hashlib
import re
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

import asyncpg
import orjson

from scimledger.audit import entries
from scimledger.scim import listing
from scimledger.scim.errors import ExpiredCursor, InvalidCursor

Order = Literal["asc", "desc"]
SOURCES = ("scim", "admin", "system")
DEFAULT_LIMIT = 100
MAX_LIMIT = 1000
CURSOR_TTL_SECONDS = 24 * 3600  # long enough for a person paging through the /admin timeline
MAX_TYPES = 50  # each type is a branch of the query

_RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2}(?:\.\d{1,9})?)(?:([Zz])|([+\- ])(\d{2}:\d{2}))"
)


class BadFilter(ValueError):
    """A filter or cursor that cannot be used (the API answers 400 ``invalid_command``)."""


def parse_time(name: str, text: str) -> datetime:
    """An RFC 3339 date-time with an offset (RFC 3339 §5.6). A space where the offset's ``+`` belongs is
    read as ``+`` (an unencoded ``+`` in a query string arrives as a space)."""
    match = _RFC3339.fullmatch(text)
    if match is None:
        raise BadFilter(f"{name} must be an RFC 3339 date-time with an offset, e.g. 2025-03-01T00:00:00Z")
    day, clock, zulu, sign, offset = match.groups()
    suffix = "+00:00" if zulu else f"{'-' if sign == '-' else '+'}{offset}"
    try:
        return datetime.fromisoformat(f"{day}T{clock}{suffix}")
    except ValueError:
        raise BadFilter(f"{name} is not a valid date-time: {text}") from None


@dataclass(frozen=True)
class AuditFilters:
    """What ``GET /api/v1/audit`` selects; ``None`` (or empty) means no filter on that field."""

    workspace_id: UUID
    order: Order = "asc"
    member: UUID | None = None
    team: UUID | None = None
    actor: str | None = None
    source: str | None = None
    types: tuple[str, ...] = ()
    since: datetime | None = None
    until: datetime | None = None
    request_id: str | None = None
    include_internal: bool = False

    def digest(self) -> str:
        """A digest of the filters: a cursor is valid only for the filters it was made for."""
        canonical = {
            "w": str(self.workspace_id),
            "o": self.order,
            "m": str(self.member) if self.member else None,
            "t": str(self.team) if self.team else None,
            "a": self.actor,
            "s": self.source,
            "y": sorted(set(self.types)),
            "f": self.since.timestamp() if self.since else None,
            "u": self.until.timestamp() if self.until else None,
            "r": self.request_id,
            "i": self.include_internal,
        }
        return hashlib.sha256(orjson.dumps(canonical, option=orjson.OPT_SORT_KEYS)).hexdigest()[:32]


# --- cursors ------------------------------------------------------------------------------------------------
def encode_cursor(filters: AuditFilters, position: int, secret: bytes) -> str:
    """An opaque, signed cursor: the last position shown, bound to ``filters``."""
    return listing.encode_cursor(
        {"f": filters.digest(), "p": position}, secret, ttl_seconds=CURSOR_TTL_SECONDS
    )


def decode_cursor(filters: AuditFilters, text: str, secret: bytes) -> int:
    """The last position shown by the page that made ``text``; BadFilter when it was made for other
    filters, altered, forged or expired."""
    try:
        found = listing.decode_cursor(text, secret)
    except ExpiredCursor:
        raise BadFilter("the cursor has expired: start again from the first page") from None
    except InvalidCursor:
        raise BadFilter("the cursor is not one this server issued") from None
    position = found.get("p")
    if found.get("f") != filters.digest():
        raise BadFilter("the cursor was made for other filters: send the same filters, or no cursor")
    if not isinstance(position, int) or isinstance(position, bool):
        raise BadFilter("the cursor is not one this server issued")
    return position


# --- SQL ----------------------------------------------------------------------------------------------------
class SqlArgs:
    """Positional parameters ($1, $2, ...) of one statement."""

    def __init__(self) -> None:
        self.values: list[Any] = []

    def __call__(self, value: Any) -> str:
        self.values.append(value)
        return f"${len(self.values)}"


def position_bounds(
    args: SqlArgs, workspace: str, since: datetime | None, until: datetime | None
) -> list[str]:
    """``since``/``until`` as conditions on ``position``: the first position recorded at or after each time
    (one probe of ``events_recorded_at``), plus the time conditions themselves."""
    out: list[str] = []
    for bound, op in ((since, ">="), (until, "<")):
        if bound is None:
            continue
        at = args(bound)
        first = (
            f"(SELECT position FROM events WHERE workspace_id = {workspace} AND recorded_at >= {at}"
            " ORDER BY recorded_at, position LIMIT 1)"
        )
        if op == ">=":
            out.append(f"position >= {first}")  # none recorded since: NULL, no row matches
        else:
            out.append(f"position < coalesce({first}, 9223372036854775807)")
        out.append(f"recorded_at {op} {at}")
    return out


def _resource_branches(args: SqlArgs, key: str, resource: UUID) -> list[str]:
    """The resource's own stream, or another stream whose payload names it under ``key``."""
    stream, text = args(resource), args(str(resource))
    return [f"stream_id = {stream}", f"data->>'{key}' = {text} AND stream_id <> {stream}"]


def page_query(filters: AuditFilters, after: int | None, limit: int) -> tuple[str, list[Any]]:
    """The SQL of one page: up to ``limit`` rows after the cursor position ``after``, in ``filters.order``."""
    args = SqlArgs()
    workspace = args(filters.workspace_id)
    common = [f"workspace_id = {workspace}"]
    descending = filters.order == "desc"
    if after is not None:
        common.append(f"position {'<' if descending else '>'} {args(after)}")
    common += position_bounds(args, workspace, filters.since, filters.until)
    if filters.actor is not None:
        common.append(f"metadata->'actor'->>'id' = {args(filters.actor)}")
    if filters.source is not None:
        common.append(f"metadata->>'source' = {args(filters.source)}")
    if filters.request_id is not None:
        common.append(f"metadata->>'request_id' = {args(filters.request_id)}")
    if not filters.include_internal:
        common.append(f"event_type <> ALL({args(sorted(entries.INTERNAL_TYPES))}::text[])")

    branches: list[str] = []  # alternatives, one of which each row satisfies (at most one: no duplicates)
    types = sorted(set(filters.types))
    if filters.member is not None:
        branches = _resource_branches(args, "member_id", filters.member)
        if filters.team is not None:
            common.append("(" + " OR ".join(_resource_branches(args, "team_id", filters.team)) + ")")
    elif filters.team is not None:
        branches = _resource_branches(args, "team_id", filters.team)
    elif len(types) > 1:
        branches = [f"event_type = {args(t)}" for t in types]
        types = []
    if len(types) == 1:
        common.append(f"event_type = {args(types[0])}")
    elif types:
        common.append(f"event_type = ANY({args(types)}::text[])")

    direction = "DESC" if descending else "ASC"
    tail = f"ORDER BY position {direction} LIMIT {args(limit)}"
    if len(branches) <= 1:
        where = " AND ".join([*common, *branches])
        return f"SELECT {entries.COLUMNS} FROM events WHERE {where} {tail}", args.values
    selects = [
        f"(SELECT {entries.COLUMNS} FROM events WHERE {' AND '.join([*common, branch])} {tail})"
        for branch in branches
    ]
    return f"SELECT * FROM ({' UNION ALL '.join(selects)}) AS e {tail}", args.values


@dataclass(frozen=True)
class Page:
    rows: Sequence[asyncpg.Record]
    last_position: int | None  # the position to continue after, when more rows follow


def planner_settings(*, in_index_order: bool = False) -> str:
    """The planner settings audit queries run with, for their transaction only (see below)."""
    settings = "SET LOCAL plan_cache_mode = force_custom_plan"
    return settings + "; SET LOCAL enable_sort = off" if in_index_order else settings


async def fetch_planned_for_values(
    conn: asyncpg.Pool | asyncpg.Connection, sql: str, args: Sequence[Any], *, in_index_order: bool = False
) -> list[asyncpg.Record]:
    """Run ``sql`` with a plan made for these very values (``plan_cache_mode = force_custom_plan``, for
    this transaction only). After five runs of a cached statement PostgreSQL may switch to a generic plan,
    which cannot tell a rare actor, source or type from a common one and may walk the whole workspace in
    position order looking for it; a custom plan picks the filter's index for a rare value.

    ``in_index_order`` also rules out sorting (``enable_sort = off``): a keyset batch of an export must
    walk an index in position order and stop after a batch, even when the statistics, not yet analysed
    after a burst of appends, make collecting and sorting every remaining row look cheaper."""
    if isinstance(conn, asyncpg.Pool):
        async with conn.acquire() as acquired:
            return await fetch_planned_for_values(acquired, sql, args, in_index_order=in_index_order)
    async with conn.transaction():
        await conn.execute(planner_settings(in_index_order=in_index_order))
        return list(await conn.fetch(sql, *args))


def walks_an_index(filters: AuditFilters) -> bool:
    """Whether every branch of the page's query can walk an index in position order (so sorting can be
    ruled out): all but ``member`` and ``team``, whose own-stream branch sorts the stream's few events."""
    return filters.member is None and filters.team is None


async def fetch_page(
    conn: asyncpg.Pool | asyncpg.Connection, filters: AuditFilters, after: int | None, limit: int
) -> Page:
    """One page of rows (one more is read to know whether another page follows)."""
    sql, args = page_query(filters, after, limit + 1)
    rows = await fetch_planned_for_values(conn, sql, args, in_index_order=walks_an_index(filters))
    if len(rows) > limit:
        return Page(rows[:limit], rows[limit - 1]["position"])
    return Page(rows, None)
