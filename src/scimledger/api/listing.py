"""Queries: ``GET /Users``, ``GET /Groups``, ``POST /.search`` (RFC 7644 §3.4.2, §3.4.3), cursors
(RFC 9865) and ``attributes``/``excludedAttributes`` on every read (§3.9).

Filters compile to parameterised SQL over the read model; the order is always total (the sort key, then
``created``, then ``id``) so that walking all pages with any page size returns every resource once.
Cursor pages use a keyset on (created, id) in the default order, which also stays exact while resources are
added or removed during the walk.
"""

from __future__ import annotations

import hashlib
from dataclasses import replace
from datetime import datetime
from typing import Any, Literal
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from scimledger import views
from scimledger.api import scim_groups, scim_users
from scimledger.api.auth import scim_principal
from scimledger.api.requests import base_url, json_body
from scimledger.api.responses import ScimResponse
from scimledger.api.selection import project, wants
from scimledger.domain.names import user_name_key
from scimledger.scim import listing
from scimledger.scim.errors import InvalidCursor, InvalidFilter, InvalidValue
from scimledger.scim.filter import parse_filter
from scimledger.scim.filter_sql import compile_filter, compile_sort

ResourceType = Literal["User", "Group"]
ALIAS = {"User": "u", "Group": "g"}


def _cursor_secret(request: Request) -> bytes:
    secret: bytes = request.app.state.cursor_secret
    return secret


def _query_key(query: listing.ListQuery) -> str:
    """RFC 9865 §2: every parameter but the cursor stays the same across the pages of one walk."""
    key = (
        query.filter,
        query.sort_by,
        query.sort_order,
        query.count,
        query.attributes,
        query.excluded_attributes,
    )
    return hashlib.sha256(repr(key).encode()).hexdigest()[:16]


async def run_query(
    request: Request, resource_type: ResourceType, query: listing.ListQuery
) -> dict[str, Any]:
    """One page of ``resource_type`` for ``query`` as a ListResponse body."""
    principal = await scim_principal(request, write=False)
    request.state.list_query = query
    alias = ALIAS[resource_type]
    args: list[object] = [principal.workspace_id]
    where = (
        compile_filter(parse_filter(query.filter), resource_type, args, user_name_key)
        if query.filter
        else "TRUE"
    )
    direction = "DESC" if query.sort_order == "descending" else "ASC"
    order = f"{alias}.created {direction}, {alias}.id {direction}"
    if query.sort_by:
        order = f"{compile_sort(query.sort_by, resource_type)} {direction} NULLS LAST, {order}"
    offset = query.start_index - 1
    next_cursor: str | None = None
    if query.cursor is not None:
        offset, where = _apply_cursor(request, query, alias, where, args)
    pool = request.app.state.pool
    base = base_url(request)
    page: list[dict[str, Any]]
    rows: list[views.UserRow] | list[views.GroupRow]
    if resource_type == "User":
        total, rows, groups = await views.find_users(
            pool,
            where,
            args,
            order_by=order,
            limit=query.count,
            offset=offset,
            with_groups=wants(request, "User", "groups"),
        )
        page = [project(request, scim_users.render(r, groups.get(r.id, []), base), "User") for r in rows]
    else:
        total, group_rows = await views.find_groups(
            pool, where, args, order_by=order, limit=query.count, offset=offset
        )
        rows = group_rows
        load = wants(request, "Group", "members") and bool(group_rows)
        members = await views.members_for_groups(pool, [r.id for r in group_rows]) if load else {}
        page = [
            project(request, scim_groups.render(r, members.get(r.id, []) if load else None, base), "Group")
            for r in group_rows
        ]
    if query.cursor is not None and len(rows) == query.count and query.count > 0:
        last = rows[-1]
        position: dict[str, Any] = {"q": _query_key(query)}
        if query.sort_by:
            position["o"] = offset + len(rows)
        else:
            position["k"] = [last.created.isoformat(), str(last.id)]
        next_cursor = listing.encode_cursor(position, _cursor_secret(request))
    if query.cursor is not None:
        return listing.list_response(page, total, start_index=None, next_cursor=next_cursor)
    return listing.list_response(page, total, start_index=query.start_index)


def _apply_cursor(
    request: Request, query: listing.ListQuery, alias: str, where: str, args: list[object]
) -> tuple[int, str]:
    """RFC 9865: an empty cursor starts at the beginning; otherwise continue after the encoded position."""
    assert query.cursor is not None
    if query.cursor == "":
        return 0, where
    position = listing.decode_cursor(query.cursor, _cursor_secret(request))
    if position.get("q") != _query_key(query):
        raise InvalidCursor("the cursor belongs to a different query")
    if "o" in position and isinstance(position["o"], int):
        return position["o"], where
    key = position.get("k")
    try:
        created, last_id = datetime.fromisoformat(key[0]), UUID(key[1])  # type: ignore[index]
    except (TypeError, ValueError, IndexError):
        raise InvalidCursor("the cursor is malformed") from None
    args.extend([created, last_id])
    n = len(args)
    op = "<" if query.sort_order == "descending" else ">"
    return 0, f"({where}) AND ({alias}.created, {alias}.id) {op} (${n - 1}, ${n})"


async def list_users(request: Request) -> Response:
    query = listing.query_from_params(request.query_params)
    return ScimResponse(await run_query(request, "User", query))


async def list_groups(request: Request) -> Response:
    query = listing.query_from_params(request.query_params)
    return ScimResponse(await run_query(request, "Group", query))


async def search_users(request: Request) -> Response:
    """RFC 7644 §3.4.3: ``POST /Users/.search``."""
    query = listing.query_from_search_body(await json_body(request))
    return ScimResponse(await run_query(request, "User", query))


async def search_groups(request: Request) -> Response:
    query = listing.query_from_search_body(await json_body(request))
    return ScimResponse(await run_query(request, "Group", query))


async def _total_or_none(
    request: Request, resource_type: ResourceType, query: listing.ListQuery
) -> int | None:
    """The total for ``query``, or None when its filter names attributes this type doesn't have."""
    try:
        total: int = (await run_query(request, resource_type, query))["totalResults"]
    except InvalidFilter:
        return None
    return total


async def search_root(request: Request) -> Response:
    """RFC 7644 §3.4.3 ``POST /.search`` across resource types: Users, then Groups, one total order.

    A filter may name attributes of one type only (``userName``): the other type then matches nothing;
    a filter valid for neither is ``invalidFilter``."""
    query = listing.query_from_search_body(await json_body(request))
    if query.cursor is not None:
        raise InvalidValue("cursor pagination is supported on /Users and /Groups, not on /.search")
    totals_only = replace(query, sort_by=None, start_index=1, count=0)
    totals = {t: await _total_or_none(request, t, totals_only) for t in ("User", "Group")}
    if all(v is None for v in totals.values()):
        await run_query(request, "User", totals_only)  # raises the User filter's error
    resources: list[dict[str, Any]] = []
    skip, wanted = query.start_index - 1, query.count
    for resource_type in ("User", "Group"):
        total = totals[resource_type] or 0
        if wanted <= 0 or skip >= total:
            skip = max(0, skip - total)
            continue
        page = replace(query, sort_by=None, start_index=skip + 1, count=wanted)
        found = (await run_query(request, resource_type, page))["Resources"]
        resources += found
        wanted -= len(found)
        skip = 0
    grand_total = sum(v or 0 for v in totals.values())
    return ScimResponse(listing.list_response(resources, grand_total, start_index=query.start_index))
