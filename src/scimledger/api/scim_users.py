"""SCIM ``/Users`` endpoints (RFC 7644 §3.3 create, §3.4.1 retrieve, §3.4.2 query, §3.5.1 replace,
§3.5.2 modify, §3.6 delete)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from scimledger import handlers, views
from scimledger.api.auth import scim_metadata, scim_principal
from scimledger.api.etags import expected_version, not_modified
from scimledger.api.requests import base_url, json_body
from scimledger.api.responses import ScimResponse
from scimledger.api.selection import project
from scimledger.scim import resources
from scimledger.scim.errors import NotFound
from scimledger.scim.patch import validate_patch_request
from scimledger.scim.users import user_from_body


def render(row: views.UserRow, groups: list[dict[str, Any]], base: str) -> dict[str, Any]:
    for group in groups:
        group.setdefault("$ref", f"{base}/Groups/{group['value']}")
    return resources.render_user(
        user_id=str(row.id),
        profile=row.resource,
        active=scim_active(row),
        groups=groups,
        created=row.created,
        last_modified=row.last_modified,
        version=row.version,
        base_url=base,
    )


def scim_active(row: views.UserRow) -> bool | None:
    """SCIM ``active``: unassigned (None) after a client removed it (access unchanged, RFC 7644 §3.5.2.2);
    else false while suspended, true otherwise."""
    if "active" in row.resource and row.resource["active"] is None:
        return None
    return row.status != "suspended"


def _user_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["id"])
    except ValueError:
        raise NotFound(f"User {request.path_params['id']} not found") from None


async def user_resource(request: Request, workspace_id: UUID, user_id: UUID) -> dict[str, Any]:
    pool = request.app.state.pool
    found = await views.get_user(pool, workspace_id, user_id)
    if found is None:
        raise NotFound(f"User {user_id} not found")
    row, groups = found
    return render(row, groups, base_url(request))


async def respond_user(request: Request, workspace_id: UUID, user_id: UUID, status: int = 200) -> Response:
    body = await user_resource(request, workspace_id, user_id)
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
    done = await handlers.provision_user(request.app.state.store, command, scim_metadata(request, principal))
    if not done.new:  # an existing app-managed member was linked: it may be in teams
        return await respond_user(request, principal.workspace_id, done.member.id, status=201)
    body = render(views.UserRow.of_member(done.member), [], base_url(request))
    headers = {"ETag": body["meta"]["version"], "Location": body["meta"]["location"]}
    return ScimResponse(body, status_code=201, headers=headers)


async def get_user(request: Request) -> Response:
    """RFC 7644 §3.4.1; ``If-None-Match`` with the current version → 304 (§3.14)."""
    principal = await scim_principal(request, write=False)
    body = await user_resource(request, principal.workspace_id, _user_id(request))
    etag = body["meta"]["version"]
    if not_modified(request, etag):
        return Response(status_code=304, headers={"ETag": etag})
    return ScimResponse(project(request, body, "User"), headers={"ETag": etag})


async def replace_user(request: Request) -> Response:
    """RFC 7644 §3.5.1 PUT: every writable attribute replaced; read-only ones in the body ignored."""
    principal = await scim_principal(request, write=True)
    user_id = _user_id(request)
    user = user_from_body(await json_body(request))
    command = handlers.ReplaceUser(principal.workspace_id, user_id, user, expected_version(request))
    await handlers.replace_user(request.app.state.store, command, scim_metadata(request, principal))
    return await respond_user(request, principal.workspace_id, user_id)


async def patch_user(request: Request) -> Response:
    """RFC 7644 §3.5.2 PATCH: atomic; answers 200 with the resource."""
    principal = await scim_principal(request, write=True)
    user_id = _user_id(request)
    operations = validate_patch_request(await json_body(request))
    command = handlers.PatchUser(principal.workspace_id, user_id, operations, expected_version(request))
    await handlers.patch_user(request.app.state.store, command, scim_metadata(request, principal))
    return await respond_user(request, principal.workspace_id, user_id)


async def delete_user(request: Request) -> Response:
    """RFC 7644 §3.6: 204; the member is deprovisioned (history kept) and 404 afterwards."""
    principal = await scim_principal(request, write=True)
    command = handlers.DeprovisionUser(principal.workspace_id, _user_id(request), expected_version(request))
    await handlers.deprovision_user(request.app.state.store, command, scim_metadata(request, principal))
    return Response(status_code=204)
