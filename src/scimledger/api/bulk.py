"""``POST /Bulk`` (RFC 7644 §3.7): each operation runs the same command handler as its single request."""

from __future__ import annotations

from typing import Any
from uuid import UUID

import asyncpg
import orjson
from starlette.requests import Request
from starlette.responses import Response

from scimledger import handlers
from scimledger.api import scim_groups, scim_users
from scimledger.api.auth import scim_metadata, scim_principal
from scimledger.api.discovery import BULK_MAX_OPERATIONS, BULK_MAX_PAYLOAD_SIZE
from scimledger.api.errors import scim_error_for
from scimledger.api.requests import base_url, check_depth
from scimledger.api.responses import ScimResponse
from scimledger.domain.errors import DomainError
from scimledger.scim import bulk
from scimledger.scim.errors import InvalidSyntax, InvalidValue, NotFound, PayloadTooLarge
from scimledger.scim.patch import validate_patch_request
from scimledger.scim.users import group_from_body, user_from_body
from scimledger.views import Principal


def _version(raw: str | None) -> int | None:
    if raw is None or raw.strip() == "*":
        return None
    digits = raw.strip().removeprefix("W/").strip('"')
    return int(digits) if digits.isdigit() else -1


async def bulk_request(request: Request) -> Response:
    principal = await scim_principal(request, write=True)
    raw = await request.body()
    if len(raw) > BULK_MAX_PAYLOAD_SIZE:
        raise PayloadTooLarge(
            f"The size of the bulk operation exceeds the maxPayloadSize ({BULK_MAX_PAYLOAD_SIZE})."
        )
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidSyntax(f"the request body is not valid JSON: {error}") from error
    check_depth(body, nul_possible=b"\\u0000" in raw)
    parsed = bulk.validate_bulk_request(
        body,
        max_operations=BULK_MAX_OPERATIONS,
        max_payload_size=BULK_MAX_PAYLOAD_SIZE,
        payload_size=len(raw),
    )

    async def dispatch(method: str, path: str, data: Any, version: str | None) -> bulk.DispatchResult:
        try:
            return await _run(request, principal, method, path, data, _version(version))
        except DomainError as error:
            raise scim_error_for(error) from error
        except (asyncpg.DataError, asyncpg.ProgramLimitExceededError) as error:
            raise InvalidValue(f"a value in the operation cannot be stored: {error}") from error

    return ScimResponse(await bulk.execute_bulk(parsed, dispatch, base_url=base_url(request)))


async def _run(
    request: Request, principal: Principal, method: str, path: str, data: Any, version: int | None
) -> bulk.DispatchResult:
    store, meta, ws = request.app.state.store, scim_metadata(request, principal), principal.workspace_id
    parts = path.strip("/").split("/")
    kind = parts[0]
    target = _uuid(parts[1], kind) if len(parts) > 1 else None
    if kind == "Users":
        if method == "POST":
            user = user_from_body(data)
            target = (
                await handlers.provision_user(
                    store, handlers.ProvisionUser(ws, user.user_name, user.profile, user.active), meta
                )
            ).member.id
            return _result(201, await scim_users.user_resource(request, ws, target))
        assert target is not None
        if method == "DELETE":
            await handlers.deprovision_user(store, handlers.DeprovisionUser(ws, target, version), meta)
            return 204, None, f"{base_url(request)}/Users/{target}", None
        if method == "PUT":
            await handlers.replace_user(
                store, handlers.ReplaceUser(ws, target, user_from_body(data), version), meta
            )
        else:
            operations = validate_patch_request(data)
            await handlers.patch_user(store, handlers.PatchUser(ws, target, operations, version), meta)
        return _result(200, await scim_users.user_resource(request, ws, target))
    if method == "POST":
        target = await handlers.create_team(store, handlers.CreateTeam(ws, group_from_body(data)), meta)
        return _result(201, await scim_groups.group_resource(request, ws, target, with_members=True))
    assert target is not None
    if method == "DELETE":
        await handlers.archive_team(store, handlers.ArchiveTeam(ws, target, version), meta)
        return 204, None, f"{base_url(request)}/Groups/{target}", None
    if method == "PUT":
        await handlers.replace_team(
            store, handlers.ReplaceTeam(ws, target, group_from_body(data), version), meta
        )
    else:
        operations = validate_patch_request(data)
        await handlers.patch_team(store, handlers.PatchTeam(ws, target, operations, version), meta)
    return _result(200, await scim_groups.group_resource(request, ws, target, with_members=True))


def _uuid(text: str, kind: str) -> UUID:
    try:
        return UUID(text)
    except ValueError:
        raise NotFound(f"{kind[:-1]} {text} not found") from None


def _result(status: int, body: dict[str, Any]) -> bulk.DispatchResult:
    return status, body, body["meta"]["location"], body["meta"]["version"]
