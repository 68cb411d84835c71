"""Bearer authentication (RFC 7644 §2): SCIM tokens resolve to one workspace; scopes gate writes."""

from __future__ import annotations

import time
from uuid import UUID

from starlette.requests import Request

from scimledger import credentials, views
from scimledger.api import rate_limit, request_context
from scimledger.scim.errors import Forbidden, Unauthorized
from scimledger.store.event_store import Metadata

_last_touch: dict[UUID, float] = {}
ADMIN_KEY_IS_NOT_A_TOKEN = "this is an admin key; SCIM needs a SCIM token from POST /api/v1/tokens"


def bearer(request: Request) -> str | None:
    header = request.headers.get("authorization", "")
    scheme, _, value = header.partition(" ")
    if scheme.lower() != "bearer" or not value.strip():
        return None
    return value.strip()


async def scim_principal(request: Request, *, write: bool) -> views.Principal:
    """The token's principal; 401 without a valid token, 403 when a write lacks ``scim:write``."""
    rate_limit.check_address(request)
    secret = bearer(request)
    if secret is None or not credentials.well_formed(secret, credentials.SCIM_TOKEN_PREFIX):
        rate_limit.failed_authentication(request)
        if secret is not None and credentials.well_formed(secret, credentials.ADMIN_KEY_PREFIX):
            raise Unauthorized(ADMIN_KEY_IS_NOT_A_TOKEN)
        raise Unauthorized("a valid bearer token is required")
    pool = request.app.state.pool
    principal: views.Principal | None = await request.app.state.token_cache.principal(
        credentials.secret_hash(secret)
    )
    if principal is None:
        rate_limit.failed_authentication(request)
        raise Unauthorized("the bearer token is invalid or has been revoked")
    rate_limit.spend(request, principal.token_id)
    request_context.note(request, workspace=principal.workspace_id, token=principal.token_id)
    if write and "scim:write" not in principal.scopes:
        raise Forbidden("this token has read-only scope (scim:read); writes need scim:write")
    now = time.monotonic()
    if now - _last_touch.get(principal.token_id, -120.0) > 60:
        _last_touch[principal.token_id] = now
        await views.touch_token(pool, principal.token_id)
    return principal


def scim_metadata(request: Request, principal: views.Principal) -> Metadata:
    """Seed 004: every event a token causes names the token (id and name) as its actor."""
    client = request.client
    return Metadata(
        actor_kind="token",
        actor_id=str(principal.token_id),
        actor_name=principal.token_name,
        source="scim",
        request_id=request_context.request_id(request),
        user_agent=request_context.user_agent(request),
        client_addr=client.host if client else None,
    )
