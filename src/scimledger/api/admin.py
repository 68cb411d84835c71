"""The admin API (``/api/v1``, ``Authorization: Bearer <admin key>``, one workspace per key).

Errors are ``{"error": {"code", "message"}}``. A key of one workspace sees nothing of another: an id of
another workspace is 404, as for a missing one. Paths are a contract other tools depend on. Lists page
(``admin_pages``); admin keys are ``api/admin_keys.py``.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

import orjson
from starlette.requests import Request
from starlette.responses import Response

from scimledger import admin_views, credentials, handlers
from scimledger.api import admin_pages, rate_limit, request_context
from scimledger.api.responses import JSONResponse
from scimledger.domain.addresses import is_email_address, notify_address
from scimledger.domain.errors import InvalidCommand, UnknownResource
from scimledger.domain.member import ROLES
from scimledger.scim.errors import Unauthorized
from scimledger.store.event_store import Metadata


async def _principal(request: Request) -> admin_views.AdminPrincipal:
    rate_limit.check_address(request)
    header = request.headers.get("authorization", "")
    scheme, _, secret = header.partition(" ")
    secret = secret.strip()
    if scheme.lower() != "bearer" or not credentials.well_formed(secret, credentials.ADMIN_KEY_PREFIX):
        rate_limit.failed_authentication(request)
        raise Unauthorized("an admin key is required (Authorization: Bearer slkey_...)")
    principal = await admin_views.admin_principal(request.app.state.pool, credentials.secret_hash(secret))
    if principal is None:
        rate_limit.failed_authentication(request)
        raise Unauthorized("the admin key is invalid or has been revoked")
    rate_limit.spend(request, principal.key_id)
    request_context.note(request, workspace=principal.workspace_id, admin_key=principal.key_id)
    return principal


def _meta(request: Request, principal: admin_views.AdminPrincipal) -> Metadata:
    client = request.client
    return Metadata(
        actor_kind="admin",
        actor_id=str(principal.key_id),
        actor_name=f"admin key {str(principal.key_id)[:8]}",
        source="admin",
        request_id=request_context.request_id(request),
        user_agent=request_context.user_agent(request),
        client_addr=client.host if client else None,
    )


async def _body(request: Request) -> dict[str, Any]:
    raw = await request.body()
    try:
        body = orjson.loads(raw or b"{}")
    except orjson.JSONDecodeError as error:
        raise InvalidCommand(f"the request body is not valid JSON: {error}") from error
    if not isinstance(body, dict):
        raise InvalidCommand("the request body must be a JSON object")
    return body


def _field(body: dict[str, Any], name: str, kind: type, *, required: bool = True) -> Any:
    value = body.get(name)
    if value is None and not required:
        return None
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        needed = "is required and must be" if required else "must be"
        raise InvalidCommand(f"{name} {needed} a {kind.__name__}")
    return value


def _id(request: Request, what: str) -> UUID:
    try:
        return UUID(request.path_params["id"])
    except ValueError:
        raise UnknownResource(f"{what} {request.path_params['id']} not found") from None


# --- workspace, settings, seats, domains ------------------------------------------------------------------
async def get_workspace(request: Request) -> Response:
    principal = await _principal(request)
    found = await admin_views.workspace(request.app.state.pool, principal.workspace_id)
    if found is None:
        raise UnknownResource("workspace not found")
    return JSONResponse(found)


async def patch_settings(request: Request) -> Response:
    principal = await _principal(request)
    enabled = _field(await _body(request), "automatic_seat_assignment", bool)
    command = handlers.ChangeSettings(principal.workspace_id, enabled)
    await handlers.change_settings(request.app.state.store, command, _meta(request, principal))
    return await get_workspace(request)


async def add_seats(request: Request) -> Response:
    principal = await _principal(request)
    count = _field(await _body(request), "count", int)
    await handlers.add_seats(
        request.app.state.store, handlers.AddSeats(principal.workspace_id, count), _meta(request, principal)
    )
    return await get_workspace(request)


async def add_domain(request: Request) -> Response:
    """201: the workspace, and the challenge to publish for the domain (README "Verifying a domain")."""
    principal = await _principal(request)
    domain = _field(await _body(request), "domain", str)
    challenge = await handlers.add_domain(
        request.app.state.store, handlers.AddDomain(principal.workspace_id, domain), _meta(request, principal)
    )
    found = await admin_views.workspace(request.app.state.pool, principal.workspace_id)
    if found is None:
        raise UnknownResource("workspace not found")
    shown = admin_views.challenge(challenge.record, challenge.value) if challenge else None
    return JSONResponse({**found, "challenge": shown}, status_code=201)


async def verify_domain(request: Request) -> Response:
    """Issue 8: verified only when the DNS TXT challenge proves control (409 ``domain_not_proven``)."""
    principal = await _principal(request)
    domain = request.path_params["domain"]
    await handlers.verify_domain(
        request.app.state.store,
        handlers.VerifyDomain(principal.workspace_id, domain, method="dns"),
        _meta(request, principal),
    )
    return await get_workspace(request)


# --- tokens (seed 004) --------------------------------------------------------------------------------------
async def create_token(request: Request) -> Response:
    """201 with ``id`` and ``token``: the only time the secret is shown."""
    principal = await _principal(request)
    body = await _body(request)
    scopes = body.get("scopes", ["scim:read", "scim:write"])
    if not isinstance(scopes, list) or not all(isinstance(s, str) for s in scopes):
        raise InvalidCommand("scopes must be a list of strings")
    command = handlers.IssueToken(
        workspace_id=principal.workspace_id,
        name=_field(body, "name", str),
        description=_field(body, "description", str, required=False),
        scopes=tuple(scopes),
    )
    issued = await handlers.issue_token(request.app.state.store, command, _meta(request, principal))
    listed = await admin_views.token(request.app.state.pool, principal.workspace_id, issued.token_id)
    assert listed is not None  # the inline projection wrote it in the same transaction
    return JSONResponse({**listed, "token": issued.token}, status_code=201)


async def list_tokens(request: Request) -> Response:
    principal = await _principal(request)
    query = admin_pages.page_query(request, "tokens", principal.workspace_id, {})
    page = await admin_views.tokens(
        request.app.state.pool, principal.workspace_id, after=query.after, limit=query.limit
    )
    return _page_response(request, "tokens", principal.workspace_id, query, page)


async def revoke_token(request: Request) -> Response:
    """Revocation takes effect on the token's next request."""
    principal = await _principal(request)
    command = handlers.RevokeToken(principal.workspace_id, _id(request, "token"))
    await handlers.revoke_token(request.app.state.store, command, _meta(request, principal))
    return Response(status_code=204)


# --- members ------------------------------------------------------------------------------------------------
MEMBER_FILTERS = {
    "status": ("active", "invited", "suspended", "deprovisioned"),
    "role": ROLES,
    "managed_by": ("idp", "app"),
}


async def list_members(request: Request) -> Response:
    principal = await _principal(request)
    query = admin_pages.page_query(request, "members", principal.workspace_id, MEMBER_FILTERS)
    page = await admin_views.members(
        request.app.state.pool,
        principal.workspace_id,
        status=query.filters["status"],
        role=query.filters["role"],
        managed_by=query.filters["managed_by"],
        after=query.after,
        limit=query.limit,
    )
    return _page_response(request, "members", principal.workspace_id, query, page)


async def _member_response(
    request: Request, workspace_id: UUID, member_id: UUID, status: int = 200
) -> Response:
    found = await admin_views.member(request.app.state.pool, workspace_id, member_id)
    if found is None:
        raise UnknownResource(f"member {member_id} not found")
    return JSONResponse(found, status_code=status)


async def get_member(request: Request) -> Response:
    principal = await _principal(request)
    return await _member_response(request, principal.workspace_id, _id(request, "member"))


async def create_member(request: Request) -> Response:
    """An app-managed member (the IdP never touches it until it provisions the same person: then linked).
    README "Workspace rules": mail goes to ``user_name`` when it is an email address, else to ``email``; an
    admin does not invite someone the invitation cannot reach (400)."""
    principal = await _principal(request)
    body = await _body(request)
    user_name = _field(body, "user_name", str).strip()
    if not user_name:
        raise InvalidCommand("user_name must not be blank")
    role = _field(body, "role", str, required=False) or "member"
    if role not in ("member", "admin"):
        raise InvalidCommand("role must be member or admin")
    profile: dict[str, Any] = {"userName": user_name, "roles": [{"value": role}]}
    email = _field(body, "email", str, required=False)
    if email is not None:  # where mail goes when user_name is no email address (README "Workspace rules")
        if not is_email_address(email.strip()):
            raise InvalidCommand(f"email must be an email address such as dan@example.com, not {email!r}")
        profile["emails"] = [{"value": email.strip(), "primary": True}]
    if notify_address(user_name, profile) is None:  # the invitation would go nowhere
        raise InvalidCommand(
            f"user_name {user_name!r} is not an email address: give the person's email address in email, "
            "where the invitation goes"
        )
    command = handlers.ProvisionUser(
        workspace_id=principal.workspace_id, user_name=user_name, profile=profile, managed_by="app"
    )
    done = await handlers.provision_user(request.app.state.store, command, _meta(request, principal))
    return await _member_response(request, principal.workspace_id, done.member.id, status=201)


async def patch_member(request: Request) -> Response:
    principal = await _principal(request)
    body = await _body(request)
    member_id = _id(request, "member")
    command = handlers.ChangeMember(
        principal.workspace_id,
        member_id,
        role=_field(body, "role", str, required=False),
        active=_field(body, "active", bool, required=False),
    )
    await handlers.change_member(request.app.state.store, command, _meta(request, principal))
    return await _member_response(request, principal.workspace_id, member_id)


async def accept_invite(request: Request) -> Response:
    principal = await _principal(request)
    member_id = _id(request, "member")
    command = handlers.AcceptInvite(principal.workspace_id, member_id)
    await handlers.accept_invite(request.app.state.store, command, _meta(request, principal))
    return await _member_response(request, principal.workspace_id, member_id)


# --- teams --------------------------------------------------------------------------------------------------
async def list_teams(request: Request) -> Response:
    principal = await _principal(request)
    query = admin_pages.page_query(request, "teams", principal.workspace_id, {})
    page = await admin_views.teams(
        request.app.state.pool, principal.workspace_id, after=query.after, limit=query.limit
    )
    return _page_response(request, "teams", principal.workspace_id, query, page)


async def _team_response(request: Request, workspace_id: UUID, team_id: UUID, status: int = 200) -> Response:
    team = await admin_views.team(request.app.state.pool, workspace_id, team_id)
    if team is None:
        raise UnknownResource(f"team {team_id} not found")
    return JSONResponse(team, status_code=status)


async def get_team(request: Request) -> Response:
    """One team, archived too, as ``GET /api/v1/teams`` lists it."""
    principal = await _principal(request)
    return await _team_response(request, principal.workspace_id, _id(request, "team"))


async def create_team(request: Request) -> Response:
    principal = await _principal(request)
    name = _field(await _body(request), "name", str)
    command = handlers.CreateAppTeam(principal.workspace_id, name)
    team_id = await handlers.create_app_team(request.app.state.store, command, _meta(request, principal))
    return await _team_response(request, principal.workspace_id, team_id, status=201)


async def unlink_team(request: Request) -> Response:
    principal = await _principal(request)
    team_id = _id(request, "team")
    await handlers.unlink_team(
        request.app.state.store,
        handlers.UnlinkTeam(principal.workspace_id, team_id),
        _meta(request, principal),
    )
    return await _team_response(request, principal.workspace_id, team_id)


# --- drift and outbox ---------------------------------------------------------------------------------------
async def list_drift(request: Request) -> Response:
    principal = await _principal(request)
    query = admin_pages.page_query(request, "drift", principal.workspace_id, {})
    page = await admin_views.drift(
        request.app.state.pool, principal.workspace_id, after=query.after, limit=query.limit
    )
    return _page_response(request, "drift", principal.workspace_id, query, page)


async def list_outbox(request: Request) -> Response:
    principal = await _principal(request)
    query = admin_pages.page_query(request, "outbox", principal.workspace_id, {})
    page = await admin_views.outbox(
        request.app.state.pool, principal.workspace_id, after=query.after, limit=query.limit
    )
    return _page_response(request, "outbox", principal.workspace_id, query, page)


def _page_response(
    request: Request, name: str, workspace_id: UUID, query: admin_pages.PageQuery, page: admin_views.Page
) -> Response:
    """A list's page under its name, and the cursor of the next page (README "Admin API", "Lists")."""
    cursor = admin_pages.next_cursor(request, name, workspace_id, query, page.last)
    return JSONResponse({name: page.items, "next_cursor": cursor})
