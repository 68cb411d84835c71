"""SCIM ``/Users`` endpoints (RFC 7644 §3.3 create, §3.4.1 retrieve, §3.4.2 query)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from scimledger import handlers, views
from scimledger.api.auth import scim_metadata, scim_principal
from scimledger.api.requests import base_url, json_body
from scimledger.api.responses import ScimResponse
from scimledger.scim import resources
from scimledger.scim.errors import InvalidValue, NotFound
from scimledger.scim.filter import parse_filter
from scimledger.scim.filter_sql import compile_filter
from scimledger.scim.users import user_from_body

DEFAULT_COUNT = 100
MAX_COUNT = 500


def _render(row: views.UserRow, groups: list[dict[str, Any]], base: str) -> dict[str, Any]:
    return resources.render_user(
        user_id=str(row.id),
        profile=row.resource,
        active=row.active,
        groups=groups,
        created=row.created,
        last_modified=row.last_modified,
        version=row.version,
        base_url=base,
    )


def _user_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["id"])
    except ValueError:
        raise NotFound(f"User {request.path_params['id']} not found") from None


async def _respond_user(request: Request, workspace_id: UUID, user_id: UUID, status: int = 200) -> Response:
    pool = request.app.state.pool
    row = await views.get_user(pool, workspace_id, user_id)
    if row is None:
        raise NotFound(f"User {user_id} not found")
    groups = (await views.groups_of(pool, [row.id])).get(row.id, [])
    body = _render(row, groups, base_url(request))
    headers = {"ETag": body["meta"]["version"], "Location": body["meta"]["location"]}
    return ScimResponse(body, status_code=status, headers=headers)


async def create_user(request: Request) -> Response:
    """RFC 7644 §3.3: 201 with the created User; 409 ``uniqueness`` for a taken userName."""
    principal = await scim_principal(request, write=True)
    user = user_from_body(await json_body(request))
    command = handlers.ProvisionUser(
        workspace_id=principal.workspace_id,
        user_name=user.user_name,
        profile=user.profile,
        active=user.active,
    )
    member_id = await handlers.provision_user(
        request.app.state.store, command, scim_metadata(request, principal)
    )
    return await _respond_user(request, principal.workspace_id, member_id, status=201)


async def get_user(request: Request) -> Response:
    principal = await scim_principal(request, write=False)
    return await _respond_user(request, principal.workspace_id, _user_id(request))


def _int_param(request: Request, name: str, default: int) -> int:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise InvalidValue(f"{name} must be an integer") from None


async def list_users(request: Request) -> Response:
    """RFC 7644 §3.4.2: filter, startIndex (1-based, < 1 means 1) and count (default 100, max 500)."""
    principal = await scim_principal(request, write=False)
    params: list[object] = [principal.workspace_id]  # $1 in views.find_users
    raw_filter = request.query_params.get("filter")
    where = compile_filter(parse_filter(raw_filter), "User", params) if raw_filter else "TRUE"
    start = max(1, _int_param(request, "startIndex", 1))
    count = min(MAX_COUNT, max(0, _int_param(request, "count", DEFAULT_COUNT)))
    pool = request.app.state.pool
    total, rows = await views.find_users(
        pool, where, params, order_by="u.created, u.id", limit=count, offset=start - 1
    )
    groups = await views.groups_of(pool, [r.id for r in rows]) if rows else {}
    base = base_url(request)
    page = [_render(r, groups.get(r.id, []), base) for r in rows]
    return ScimResponse(resources.list_response(page, total, start))
