"""The audit log API (issue 7, "Audit API"): ``GET /api/v1/audit`` and ``GET /api/v1/audit/export``.

Admin key; the key's workspace only. Query parameters are checked before anything is read: an unknown
parameter, a repeated single-valued one, or a value that cannot be used (a malformed uuid or time, an
unknown ``order``/``source``/``include``/``format``, ``limit`` outside 1..1000, a cursor made for other
filters) is 400 ``invalid_command``. An empty value means no filter, as in ``GET /api/v1/members``.
What is shown is decoded from the bytes the hash chain covers (``scimledger.audit.entries``).
"""

from __future__ import annotations

import re
from datetime import datetime
from typing import cast
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response, StreamingResponse

from scimledger.api import admin, request_context
from scimledger.api.responses import JSONResponse
from scimledger.audit import entries, export, log_query
from scimledger.audit.log_query import AuditFilters, BadFilter
from scimledger.domain.errors import InvalidCommand

PAGE_PARAMETERS = frozenset(
    {
        "order",
        "member",
        "team",
        "actor",
        "source",
        "type",
        "since",
        "until",
        "request_id",
        "include",
        "cursor",
        "limit",
    }
)
EXPORT_PARAMETERS = frozenset({"format", "since", "until"})
EVENT_TYPE = re.compile(r"[A-Za-z][A-Za-z0-9_]{0,99}")
MAX_ACTOR_LENGTH = 256


def _parameters(request: Request, allowed: frozenset[str]) -> dict[str, list[str]]:
    """The query's non-empty values by name; 400 for a name not in ``allowed`` or a NUL character."""
    found: dict[str, list[str]] = {}
    for name, value in request.query_params.multi_items():
        if name not in allowed:
            raise InvalidCommand(f"unknown query parameter {name!r}; known: {', '.join(sorted(allowed))}")
        if "\x00" in value:
            raise InvalidCommand(f"{name} must not contain a NUL character")
        if value != "":
            found.setdefault(name, []).append(value)
    return found


def _single(found: dict[str, list[str]], name: str) -> str | None:
    values = found.get(name, [])
    if len(values) > 1:
        raise InvalidCommand(f"{name} may be given once")
    return values[0] if values else None


def _choice(found: dict[str, list[str]], name: str, choices: tuple[str, ...], default: str) -> str:
    value = _single(found, name) or default
    if value not in choices:
        raise InvalidCommand(f"{name} must be one of {', '.join(choices)}")
    return value


def _uuid(found: dict[str, list[str]], name: str) -> UUID | None:
    value = _single(found, name)
    if value is None:
        return None
    try:
        return UUID(value)
    except ValueError:
        raise InvalidCommand(f"{name} must be a uuid") from None


def _time(found: dict[str, list[str]], name: str) -> datetime | None:
    value = _single(found, name)
    if value is None:
        return None
    try:
        return log_query.parse_time(name, value)
    except BadFilter as error:
        raise InvalidCommand(str(error)) from None


def _time_range(found: dict[str, list[str]]) -> tuple[datetime | None, datetime | None]:
    """``since`` (inclusive) and ``until`` (exclusive)."""
    since, until = _time(found, "since"), _time(found, "until")
    if since is not None and until is not None and since > until:
        raise InvalidCommand("since must not be later than until")
    return since, until


def _include_internal(found: dict[str, list[str]]) -> bool:
    """``include=internal`` lists bookkeeping events (``entries.INTERNAL_TYPES``) too."""
    value = _single(found, "include")
    if value not in (None, "internal"):
        raise InvalidCommand("include must be internal")
    return value == "internal"


def _limit(found: dict[str, list[str]]) -> int:
    value = _single(found, "limit")
    if value is None:
        return log_query.DEFAULT_LIMIT
    if not value.isascii() or not value.isdigit() or not 1 <= int(value) <= log_query.MAX_LIMIT:
        raise InvalidCommand(f"limit must be an integer from 1 to {log_query.MAX_LIMIT}")
    return int(value)


def _filters(workspace_id: UUID, found: dict[str, list[str]]) -> AuditFilters:
    actor = _single(found, "actor")
    if actor is not None and len(actor) > MAX_ACTOR_LENGTH:
        raise InvalidCommand(f"actor must be at most {MAX_ACTOR_LENGTH} characters")
    request_id = _single(found, "request_id")
    if request_id is not None and not request_context.WELL_FORMED.fullmatch(request_id):
        raise InvalidCommand("request_id is not a request id (1-128 of A-Z a-z 0-9 . _ : / + = -)")
    types = tuple(dict.fromkeys(found.get("type", [])))
    if len(types) > log_query.MAX_TYPES or not all(EVENT_TYPE.fullmatch(t) for t in types):
        raise InvalidCommand(
            f"type must be an event type name (e.g. SeatAssigned), at most {log_query.MAX_TYPES}"
        )
    source = _single(found, "source")
    if source is not None and source not in log_query.SOURCES:
        raise InvalidCommand(f"source must be one of {', '.join(log_query.SOURCES)}")
    since, until = _time_range(found)
    return AuditFilters(
        workspace_id=workspace_id,
        order=cast(log_query.Order, _choice(found, "order", ("asc", "desc"), "asc")),
        member=_uuid(found, "member"),
        team=_uuid(found, "team"),
        actor=actor,
        source=source,
        types=types,
        since=since,
        until=until,
        request_id=request_id,
        include_internal=_include_internal(found),
    )


async def list_audit(request: Request) -> Response:
    """``GET /api/v1/audit``: a page of the workspace's audit entries and the cursor of the next page
    (``null`` on the last page). A cursor continues strictly after the last position shown, in the page's
    order, so pages never skip or repeat an event while others are appended."""
    principal = await admin._principal(request)
    found = _parameters(request, PAGE_PARAMETERS)
    filters = _filters(principal.workspace_id, found)
    limit = _limit(found)
    secret: bytes = request.app.state.cursor_secret
    cursor = _single(found, "cursor")
    try:
        after = log_query.decode_cursor(filters, cursor, secret) if cursor is not None else None
    except BadFilter as error:
        raise InvalidCommand(str(error)) from None
    page = await log_query.fetch_page(request.app.state.pool, filters, after, limit)
    next_cursor = (
        log_query.encode_cursor(filters, page.last_position, secret)
        if page.last_position is not None
        else None
    )
    return JSONResponse({"entries": [entries.entry(row) for row in page.rows], "next_cursor": next_cursor})


async def export_audit(request: Request) -> Response:
    """``GET /api/v1/audit/export``: every event of the workspace in ``[since, until)``, streamed
    (``scimledger.audit.export``)."""
    principal = await admin._principal(request)
    found = _parameters(request, EXPORT_PARAMETERS)
    fmt = cast(export.Format, _choice(found, "format", ("ndjson", "csv"), "ndjson"))
    since, until = _time_range(found)
    selected = export.ExportRange(principal.workspace_id, since, until)
    pool = request.app.state.pool
    upto = await export.last_position(pool, selected)

    disposition = f'attachment; filename="{selected.filename(fmt)}"'
    return StreamingResponse(
        export.chunks(pool, selected, fmt, upto),
        media_type=export.MEDIA_TYPES[fmt],
        headers={"Content-Disposition": disposition},
    )
