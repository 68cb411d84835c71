"""SCIM ``/Groups`` endpoints: teams (RFC 7644 §3.3-§3.6; seeds 000, 002, 004)."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from scimledger import handlers, views
from scimledger.api.auth import scim_metadata, scim_principal
from scimledger.api.etags import expected_version, not_modified
from scimledger.api.requests import base_url, json_body
from scimledger.api.responses import ScimResponse
from scimledger.api.selection import project, selects_everything, wants
from scimledger.scim import resources
from scimledger.scim.errors import NotFound
from scimledger.scim.patch import validate_patch_request
from scimledger.scim.users import group_from_body


def render(
    row: views.GroupRow, members: list[dict[str, Any]] | orjson.Fragment | None, base: str
) -> dict[str, Any]:
    """RFC 7643 §4.2: a Group; ``members`` is None when the client excluded it (then it isn't loaded), or
    the array already rendered as JSON (``views.get_group_with_members_json``)."""
    out: dict[str, Any] = {
        "schemas": [resources.GROUP_SCHEMA],
        "id": str(row.id),
        "displayName": row.display_name,
    }
    if row.external_id is not None:
        out["externalId"] = row.external_id
    if isinstance(members, orjson.Fragment):
        out["members"] = members
    elif members:
        out["members"] = [{**m, "$ref": f"{base}/Users/{m['value']}", "type": "User"} for m in members]
    out["meta"] = resources.meta(
        "Group", row.created, row.last_modified, f"{base}/Groups/{row.id}", row.version
    )
    return out


def _group_id(request: Request) -> UUID:
    try:
        return UUID(request.path_params["id"])
    except ValueError:
        raise NotFound(f"Group {request.path_params['id']} not found") from None


async def group_resource(
    request: Request, workspace_id: UUID, group_id: UUID, *, with_members: bool
) -> dict[str, Any]:
    pool = request.app.state.pool
    row = await views.get_group(pool, workspace_id, group_id)
    if row is None:
        raise NotFound(f"Group {group_id} not found")
    members = (await views.members_for_groups(pool, [row.id])).get(row.id, []) if with_members else None
    return render(row, members, base_url(request))


async def full_group_resource(request: Request, workspace_id: UUID, group_id: UUID) -> dict[str, Any]:
    """The default representation, members included, whatever the team's size (issue 9, "Big teams"):
    PostgreSQL renders the members array and it goes into the response as it is, without a Python object
    per member; the same bytes as ``render`` with the loaded members."""
    base = base_url(request)
    found = await views.get_group_with_members_json(
        request.app.state.pool, workspace_id, group_id, f"{base}/Users/"
    )
    if found is None:
        raise NotFound(f"Group {group_id} not found")
    row, members_json = found
    return render(row, None if members_json is None else orjson.Fragment(members_json), base)


async def respond_group(request: Request, workspace_id: UUID, group_id: UUID, status: int = 200) -> Response:
    if selects_everything(request):
        body = await full_group_resource(request, workspace_id, group_id)
    else:
        with_members = wants(request, "Group", "members")
        body = await group_resource(request, workspace_id, group_id, with_members=with_members)
    headers = {"ETag": body["meta"]["version"], "Location": body["meta"]["location"]}
    return ScimResponse(project(request, body, "Group"), status_code=status, headers=headers)


async def create_group(request: Request) -> Response:
    principal = await scim_principal(request, write=True)
    group = group_from_body(await json_body(request))
    command = handlers.CreateTeam(principal.workspace_id, group)
    team_id = await handlers.create_team(request.app.state.store, command, scim_metadata(request, principal))
    return await respond_group(request, principal.workspace_id, team_id, status=201)


async def get_group(request: Request) -> Response:
    principal = await scim_principal(request, write=False)
    group_id = _group_id(request)
    row = await views.get_group(request.app.state.pool, principal.workspace_id, group_id)
    if row is not None and not_modified(request, resources.etag(row.version)):
        return Response(status_code=304, headers={"ETag": resources.etag(row.version)})
    return await respond_group(request, principal.workspace_id, group_id)


async def replace_group(request: Request) -> Response:
    principal = await scim_principal(request, write=True)
    group_id = _group_id(request)
    group = group_from_body(await json_body(request))
    command = handlers.ReplaceTeam(principal.workspace_id, group_id, group, expected_version(request))
    await handlers.replace_team(request.app.state.store, command, scim_metadata(request, principal))
    return await respond_group(request, principal.workspace_id, group_id)


async def patch_group(request: Request) -> Response:
    principal = await scim_principal(request, write=True)
    group_id = _group_id(request)
    operations = validate_patch_request(await json_body(request))
    command = handlers.PatchTeam(principal.workspace_id, group_id, operations, expected_version(request))
    await handlers.patch_team(request.app.state.store, command, scim_metadata(request, principal))
    return await respond_group(request, principal.workspace_id, group_id)


async def delete_group(request: Request) -> Response:
    principal = await scim_principal(request, write=True)
    command = handlers.ArchiveTeam(principal.workspace_id, _group_id(request), expected_version(request))
    await handlers.archive_team(request.app.state.store, command, scim_metadata(request, principal))
    return Response(status_code=204)
