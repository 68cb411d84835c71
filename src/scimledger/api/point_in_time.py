"""History, point-in-time answers and explanations over the admin API (issue 7, "Audit API"; these exact
paths, other tools depend on them):

- ``GET /api/v1/members/{id}/history``, ``GET /api/v1/teams/{id}/history`` (``limit`` <= 1000, ``cursor``);
- ``GET /api/v1/members/{id}?as_of=T``, ``GET /api/v1/teams/{id}/members[?as_of=T]``,
  ``GET /api/v1/admins[?as_of=T]``, ``GET /api/v1/seats[?as_of=T]``;
- ``GET /api/v1/members/{id}/explain[?as_of=T]``.

``as_of`` is an RFC 3339 date-time (RFC 3339 §5.6) with an offset; "at T" means after every event recorded at
or before T. A bad value is 400 ``invalid_command``; a member that did not exist yet at T is 404, a list is
empty. Everything is computed from the log (``scimledger.audit``), never from the read model.
"""

from __future__ import annotations

import re
from datetime import UTC, datetime
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scimledger.api import admin
from scimledger.api.responses import JSONResponse
from scimledger.audit import entries, explain, history, point_in_time, timeline
from scimledger.domain.errors import InvalidCommand

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
# RFC 3339 §5.6 date-time; a space before the offset is a "+" that the query string decoded to a space.
RFC3339 = re.compile(
    r"(\d{4}-\d{2}-\d{2})[Tt ](\d{2}:\d{2}:\d{2})(?:\.(\d+))?([Zz]|[+\- ]\d{2}:\d{2})",
    re.ASCII,
)


def parse_as_of(text: str) -> datetime:
    """An RFC 3339 date-time, in UTC; fractions beyond microseconds are dropped (the log records
    microseconds, so no event falls between)."""
    match = RFC3339.fullmatch(text.strip())
    if match is None:
        raise InvalidCommand(
            f"as_of must be an RFC 3339 date-time such as 2025-03-01T00:00:00Z, not {text!r}"
        )
    date, time, fraction, offset = match.groups()
    offset = "+00:00" if offset in ("Z", "z") else offset.replace(" ", "+")
    micros = f".{(fraction or '')[:6]:0<6}"
    try:
        return datetime.fromisoformat(f"{date}T{time}{micros}{offset}").astimezone(UTC)
    except (ValueError, OverflowError):
        raise InvalidCommand(f"as_of is not a valid date-time: {text!r}") from None


async def _as_of(request: Request) -> tuple[int, str | None]:
    """The log position the request is about (``as_of``, else the whole log) and ``as_of`` as answered."""
    raw = request.query_params.get("as_of") or None
    if raw is None:
        return timeline.LATEST, None
    at = parse_as_of(raw)
    return await timeline.position_at(request.app.state.pool, at), entries.timestamp(at)


def _page(request: Request) -> tuple[int, int]:
    """``cursor`` (a log position from ``next_cursor``) and ``limit`` (1..1000, default 100)."""
    params = request.query_params
    cursor, limit = params.get("cursor") or "0", params.get("limit") or str(DEFAULT_LIMIT)
    if not cursor.isascii() or not cursor.isdigit() or len(cursor) > 18:
        raise InvalidCommand("cursor must be a next_cursor value from a previous page")
    if not limit.isascii() or not limit.isdigit() or len(limit) > 4 or not 1 <= int(limit) <= MAX_LIMIT:
        raise InvalidCommand(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(cursor), int(limit)


# --- history --------------------------------------------------------------------------------------------
async def member_history(request: Request) -> Response:
    principal = await admin._principal(request)
    member_id = admin._id(request, "member")
    after, limit = _page(request)
    page = await history.member_history(
        request.app.state.pool, principal.workspace_id, member_id, after=after, limit=limit
    )
    return JSONResponse({"member_id": str(member_id), "entries": page.items, "next_cursor": page.next_cursor})


async def team_history(request: Request) -> Response:
    principal = await admin._principal(request)
    team_id = admin._id(request, "team")
    after, limit = _page(request)
    page = await history.team_history(
        request.app.state.pool, principal.workspace_id, team_id, after=after, limit=limit
    )
    return JSONResponse({"team_id": str(team_id), "entries": page.items, "next_cursor": page.next_cursor})


# --- point in time --------------------------------------------------------------------------------------
async def get_member(request: Request) -> Response:
    """``GET /api/v1/members/{id}``: today's member view, or with ``as_of`` the same view at that time."""
    if not request.query_params.get("as_of"):
        return await admin.get_member(request)
    principal = await admin._principal(request)
    member_id = admin._id(request, "member")
    up_to, as_of = await _as_of(request)
    found = await point_in_time.member_at(request.app.state.pool, principal.workspace_id, member_id, up_to)
    return JSONResponse({**found, "as_of": as_of})


async def team_members(request: Request) -> Response:
    principal = await admin._principal(request)
    team_id = admin._id(request, "team")
    after, limit = _page(request)
    up_to, as_of = await _as_of(request)
    page = await point_in_time.team_members_at(
        request.app.state.pool, principal.workspace_id, team_id, up_to, after=after, limit=limit
    )
    body = {"team_id": str(team_id), "as_of": as_of, "members": page.items, "next_cursor": page.next_cursor}
    return JSONResponse(body)


async def admins(request: Request) -> Response:
    principal = await admin._principal(request)
    up_to, as_of = await _as_of(request)
    found = await point_in_time.admins_at(request.app.state.pool, principal.workspace_id, up_to)
    return JSONResponse({"as_of": as_of, "admins": found})


async def seats(request: Request) -> Response:
    principal = await admin._principal(request)
    after, limit = _page(request)
    up_to, as_of = await _as_of(request)
    pool, ws = request.app.state.pool, principal.workspace_id
    totals = await point_in_time.seat_totals_at(pool, ws, up_to)
    page = await point_in_time.seat_holders_at(pool, ws, up_to, after=after, limit=limit)
    body: dict[str, Any] = {"as_of": as_of, **totals, "holders": page.items, "next_cursor": page.next_cursor}
    return JSONResponse(body)


# --- explain --------------------------------------------------------------------------------------------
async def member_explain(request: Request) -> Response:
    principal = await admin._principal(request)
    member_id = admin._id(request, "member")
    up_to, as_of = await _as_of(request)
    found = await explain.explain_member(request.app.state.pool, principal.workspace_id, member_id, up_to)
    return JSONResponse({**found, "as_of": as_of})
