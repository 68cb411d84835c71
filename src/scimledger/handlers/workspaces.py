"""Workspace, token and admin-key commands (seed 004: tokens named, scoped, shown once, hash only)."""

from __future__ import annotations

from dataclasses import dataclass
from uuid import UUID

from scimledger import credentials
from scimledger.domain import AdminKey, Token, Workspace
from scimledger.domain.errors import InvalidCommand, UnknownResource
from scimledger.domain.limits import MAX_DESCRIPTION, bounded
from scimledger.handlers.common import with_retry
from scimledger.store.event_store import EventStore, Metadata


# --- commands ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateWorkspace:
    """Made by an operator (``scimledger workspace create``) or the first-run bootstrap, never through the
    admin API: ``domains`` are verified on their word (README "Verifying a domain")."""

    name: str
    domains: tuple[str, ...] = ()
    seats: int = 0
    automatic_seat_assignment: bool = False


@dataclass(frozen=True)
class IssueToken:
    workspace_id: UUID
    name: str
    description: str | None = None
    scopes: tuple[str, ...] = ("scim:read", "scim:write")


@dataclass(frozen=True)
class RevokeToken:
    workspace_id: UUID
    token_id: UUID


# --- results ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkspaceCreated:
    workspace_id: UUID
    admin_key: str


@dataclass(frozen=True)
class TokenIssued:
    token_id: UUID
    token: str


# --- handlers -------------------------------------------------------------------------------------------
async def create_workspace(store: EventStore, cmd: CreateWorkspace, meta: Metadata) -> WorkspaceCreated:
    if not cmd.name.strip():
        raise InvalidCommand("a workspace needs a name")
    bounded("a workspace name", cmd.name.strip())
    workspace = Workspace(name=cmd.name.strip())
    for domain in cmd.domains:  # an operator's or the bootstrap's word: recorded as method "operator"
        workspace.add_verified_domain(domain)
    if cmd.seats:
        workspace.add_seats(cmd.seats)
    workspace.set_automatic_seat_assignment(cmd.automatic_seat_assignment)
    secret = credentials.generate(credentials.ADMIN_KEY_PREFIX)
    key = AdminKey(workspace_id=str(workspace.id), secret_hash=credentials.secret_hash(secret).hex())
    await store.save(workspace.id, [workspace, key], meta)
    return WorkspaceCreated(workspace_id=workspace.id, admin_key=secret)


async def issue_token(store: EventStore, cmd: IssueToken, meta: Metadata) -> TokenIssued:
    if not cmd.name.strip():
        raise InvalidCommand("a token needs a name")
    bounded("a token name", cmd.name.strip())
    bounded("a token description", cmd.description, MAX_DESCRIPTION)
    bad = [s for s in cmd.scopes if s not in ("scim:read", "scim:write")]
    if bad or not cmd.scopes:
        raise InvalidCommand(f"unknown scopes {bad}: use scim:read and/or scim:write")
    if await store.load(Workspace, cmd.workspace_id) is None:
        raise UnknownResource(f"workspace {cmd.workspace_id} does not exist")
    secret = credentials.generate(credentials.SCIM_TOKEN_PREFIX)
    token = Token(
        workspace_id=str(cmd.workspace_id),
        name=cmd.name.strip(),
        description=cmd.description,
        scopes=sorted(set(cmd.scopes)),
        secret_hash=credentials.secret_hash(secret).hex(),
        created_by=meta.actor_name,
    )
    await store.save(cmd.workspace_id, [token], meta)
    return TokenIssued(token_id=token.id, token=secret)


async def revoke_token(store: EventStore, cmd: RevokeToken, meta: Metadata) -> None:
    async def attempt() -> None:
        token = await store.load(Token, cmd.token_id)
        if token is None or token.workspace_id != str(cmd.workspace_id):
            raise UnknownResource(f"token {cmd.token_id} not found")
        token.revoke(revoked_by=meta.actor_name)
        await store.save(cmd.workspace_id, [token], meta)

    await with_retry(attempt)
