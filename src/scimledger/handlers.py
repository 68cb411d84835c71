"""Commands and their handlers: the only place that loads and saves aggregates.

A handler loads the aggregates a command touches, calls their command methods (which check the rules and
trigger events) and saves them all in one append. On a version conflict it reloads and decides again
(bounded); a conflict on a uniqueness claim is a uniqueness error, not a retry.
"""

from __future__ import annotations

import asyncio
import random
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar
from uuid import UUID, uuid4

from scimledger import credentials
from scimledger.domain import AdminKey, Member, Person, Token, UniquenessClaim, Workspace
from scimledger.domain.errors import AlreadyTaken, InvalidCommand, UnknownResource
from scimledger.domain.member import role_from_values
from scimledger.store.event_store import EventStore, Metadata
from scimledger.store.recorder import VersionConflict

T = TypeVar("T")
MAX_ATTEMPTS = 12


# --- commands ---------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class CreateWorkspace:
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


@dataclass(frozen=True)
class ProvisionUser:
    """RFC 7644 §3.3: create a User. ``profile`` holds the SCIM attributes (no password)."""

    workspace_id: UUID
    user_name: str
    profile: dict[str, Any] = field(default_factory=dict)
    active: bool = True


# --- results ------------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class WorkspaceCreated:
    workspace_id: UUID
    admin_key: str


@dataclass(frozen=True)
class TokenIssued:
    token_id: UUID
    token: str


async def with_retry(attempt: Callable[[], Awaitable[T]]) -> T:
    """Run ``attempt`` (load, decide, save) again after a version conflict, with jittered backoff."""
    for n in range(MAX_ATTEMPTS):
        try:
            return await attempt()
        except VersionConflict:
            if n == MAX_ATTEMPTS - 1:
                raise
            await asyncio.sleep(random.uniform(0, 0.002 * (n + 1)))
    raise AssertionError("unreachable")


def _claim_conflict(error: VersionConflict, claims: dict[UUID, tuple[str, str]]) -> None:
    """Turn a lost race for a uniqueness claim into AlreadyTaken (409 ``uniqueness``)."""
    if error.stream_id in claims:
        kind, value = claims[error.stream_id]
        raise AlreadyTaken(kind, value) from error


# --- handlers -------------------------------------------------------------------------------------------
async def create_workspace(store: EventStore, cmd: CreateWorkspace, meta: Metadata) -> WorkspaceCreated:
    if not cmd.name.strip():
        raise InvalidCommand("a workspace needs a name")
    workspace = Workspace(name=cmd.name.strip())
    for domain in cmd.domains:
        workspace.add_domain(domain)
        workspace.verify_domain(domain)
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


def _roles(profile: dict[str, Any]) -> list[str]:
    roles = profile.get("roles")
    if not isinstance(roles, list):
        return []
    return [r["value"] for r in roles if isinstance(r, dict) and isinstance(r.get("value"), str)]


async def provision_user(store: EventStore, cmd: ProvisionUser, meta: Metadata) -> UUID:
    """RFC 7644 §3.3 create. Seed 000: an existing person (same email) is linked, not duplicated."""
    ws = cmd.workspace_id
    external_id = cmd.profile.get("externalId")
    wanted = {UniquenessClaim.id_for(ws, "userName", cmd.user_name): ("userName", cmd.user_name)}
    if isinstance(external_id, str):
        wanted[UniquenessClaim.id_for(ws, "externalId", external_id)] = ("externalId", external_id)
    member_id = uuid4()
    person_key = Person.id_for(cmd.user_name)

    async def attempt() -> UUID:
        loaded = await store.load_many([person_key, *wanted])
        claims = [
            UniquenessClaim.take(loaded.get(claim_id), ws, kind, value, str(member_id))
            for claim_id, (kind, value) in wanted.items()
        ]
        person = loaded.get(person_key)
        how: type[Member.Created] = Member.Linked
        changed: list[Any] = []
        if person is None:
            person = Person.register(cmd.user_name)
            changed.append(person)
            how = Member.Created
        member = Member.start(
            how,
            member_id,
            workspace_id=str(ws),
            person_id=str(person.id),
            user_name=cmd.user_name,
            profile=cmd.profile,
            role=role_from_values(_roles(cmd.profile)),
            managed_by="idp",
            status="active",
        )
        if not cmd.active:
            member.suspend(reason="provisioned inactive")
        try:
            await store.save(ws, [*changed, member, *claims], meta)
        except VersionConflict as error:
            _claim_conflict(error, wanted)
            raise
        return member_id

    return await with_retry(attempt)
