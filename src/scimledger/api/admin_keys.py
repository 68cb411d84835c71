"""``/api/v1/admin-keys`` (issue 10; README "Admin API", "Admin keys"): a workspace's admin keys.

``GET`` lists them (no secret, no hash; ``current`` marks the key of the request), ``POST`` issues one and
shows its secret (``admin_key``) in that answer only, ``DELETE /api/v1/admin-keys/{id}`` revokes one: its next
request is 401. The last active key is never revoked (409 ``last_admin_key``). The commands are
``handlers.admin_keys``, which the ``scimledger admin-key`` CLI shares.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from starlette.requests import Request
from starlette.responses import Response

from scimledger import admin_views, handlers
from scimledger.api import admin
from scimledger.api.responses import JSONResponse


def _shown(key: admin_views.AdminKeyRow, principal: admin_views.AdminPrincipal) -> dict[str, Any]:
    return {**key.as_dict(), "current": key.id == principal.key_id}


async def list_admin_keys(request: Request) -> Response:
    principal = await admin._principal(request)
    keys = await admin_views.list_admin_keys(request.app.state.pool, principal.workspace_id)
    return JSONResponse({"admin_keys": [_shown(k, principal) for k in keys]})


async def create_admin_key(request: Request) -> Response:
    """201 with the key and its secret ``admin_key``: the only time the secret is shown."""
    principal = await admin._principal(request)
    await admin._body(request)  # no fields yet; still a JSON object (or nothing)
    issued = await handlers.issue_admin_key(
        request.app.state.store,
        handlers.IssueAdminKey(principal.workspace_id),
        admin._meta(request, principal),
    )
    keys = await admin_views.list_admin_keys(request.app.state.pool, principal.workspace_id)
    [key] = [k for k in keys if k.id == issued.key_id]
    return JSONResponse({**_shown(key, principal), "admin_key": issued.admin_key}, status_code=201)


async def revoke_admin_key(request: Request) -> Response:
    """204; revoking a revoked key changes nothing. 409 ``last_admin_key`` for the last active key."""
    principal = await admin._principal(request)
    key_id: UUID = admin._id(request, "admin key")
    command = handlers.RevokeAdminKey(principal.workspace_id, key_id)
    await handlers.revoke_admin_key(request.app.state.store, command, admin._meta(request, principal))
    return Response(status_code=204)
