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

from scimledger import credentials, views
from scimledger.domain import AdminKey, Member, Membership, Person, Team, Token, UniquenessClaim, Workspace
from scimledger.domain.errors import AlreadyTaken, InvalidCommand, UnknownResource, VersionMismatch
from scimledger.domain.ids import membership_id
from scimledger.domain.member import role_from_values
from scimledger.scim import group_patch
from scimledger.scim.patch import apply_patch
from scimledger.scim.schemas import ENTERPRISE_USER_URN, GROUP_URN, USER_URN
from scimledger.scim.users import GroupInput, UserInput, normalise, user_from_body
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


# --- users: replace, patch, deprovision (RFC 7644 §3.5.1, §3.5.2, §3.6) -------------------------------------
@dataclass(frozen=True)
class ReplaceUser:
    workspace_id: UUID
    member_id: UUID
    user: UserInput
    expected_version: int | None = None


@dataclass(frozen=True)
class PatchUser:
    workspace_id: UUID
    member_id: UUID
    operations: list[dict[str, Any]]
    expected_version: int | None = None


@dataclass(frozen=True)
class DeprovisionUser:
    workspace_id: UUID
    member_id: UUID
    expected_version: int | None = None


def _check_version(version: int, expected: int | None) -> None:
    if expected is not None and expected != version:
        raise VersionMismatch(f"the resource is at version {version}, not {expected}")


async def _member(store: EventStore, workspace_id: UUID, member_id: UUID) -> Member:
    member = await store.load(Member, member_id)
    if member is None or member.workspace_id != str(workspace_id) or not member.visible:
        raise UnknownResource(f"User {member_id} not found")
    return member


def user_view(member: Member) -> dict[str, Any]:
    """The SCIM User that a PATCH applies to (RFC 7644 §3.5.2): stored attributes, id, active."""
    schemas = [USER_URN, *([ENTERPRISE_USER_URN] if ENTERPRISE_USER_URN in member.profile else [])]
    return {
        "schemas": schemas,
        "id": str(member.id),
        **member.profile,
        "active": member.status != "suspended",
    }


def _claim_changes(
    ws: UUID, loaded: dict[UUID, Any], owner: str, kind: str, old: str | None, new: str | None
) -> list[UniquenessClaim]:
    """Release the claim of ``old`` and take the claim of ``new`` when they differ (normalised)."""
    old_id = UniquenessClaim.id_for(ws, kind, old) if old else None
    new_id = UniquenessClaim.id_for(ws, kind, new) if new else None
    if old_id == new_id:
        return []
    out = []
    if old_id is not None and (old_claim := loaded.get(old_id)) is not None and old_claim.owner_id == owner:
        old_claim.release()
        out.append(old_claim)
    if new_id is not None and new is not None:
        out.append(UniquenessClaim.take(loaded.get(new_id), ws, kind, new, owner))
    return out


def _claim_ids(ws: UUID, pairs: list[tuple[str, str | None]]) -> dict[UUID, tuple[str, str]]:
    return {UniquenessClaim.id_for(ws, kind, value): (kind, value) for kind, value in pairs if value}


async def _update_user(
    store: EventStore,
    ws: UUID,
    member_id: UUID,
    decide: Callable[[Member], UserInput | None],
    expected: int | None,
    meta: Metadata,
) -> None:
    """Load the member, let ``decide`` compute its new state, record the differences (or nothing)."""

    async def attempt() -> None:
        member = await _member(store, ws, member_id)
        _check_version(member.version, expected)
        new = decide(member)
        if new is None:
            return
        old_external = member.profile.get("externalId")
        new_external = new.profile.get("externalId")
        wanted = _claim_ids(
            ws,
            [
                ("userName", member.user_name),
                ("userName", new.user_name),
                ("externalId", old_external),
                ("externalId", new_external),
            ],
        )
        loaded = await store.load_many(wanted)
        owner = str(member.id)
        claims = _claim_changes(ws, loaded, owner, "userName", member.user_name, new.user_name)
        claims += _claim_changes(ws, loaded, owner, "externalId", old_external, new_external)
        member.change_profile(new.user_name, new.profile)
        member.change_role(role_from_values(_roles(new.profile)))
        if not new.active and member.status == "active":
            member.suspend(reason="deactivated by the identity provider")
            member.revoke_sessions(reason="deactivated by the identity provider")
        elif new.active and member.status == "suspended":
            member.reactivate()
        try:
            await store.save(ws, [member, *claims], meta)
        except VersionConflict as error:
            _claim_conflict(error, wanted)
            raise

    await with_retry(attempt)


async def replace_user(store: EventStore, cmd: ReplaceUser, meta: Metadata) -> None:
    """RFC 7644 §3.5.1: PUT replaces every writable attribute; those not given are cleared."""
    await _update_user(store, cmd.workspace_id, cmd.member_id, lambda _: cmd.user, cmd.expected_version, meta)


async def patch_user(store: EventStore, cmd: PatchUser, meta: Metadata) -> None:
    """RFC 7644 §3.5.2: apply the operations atomically to the current User, then record the result."""

    def decide(member: Member) -> UserInput:
        patched = apply_patch(user_view(member), cmd.operations, "User")
        patched.pop("id", None)
        return user_from_body(patched)

    await _update_user(store, cmd.workspace_id, cmd.member_id, decide, cmd.expected_version, meta)


async def deprovision_user(store: EventStore, cmd: DeprovisionUser, meta: Metadata) -> None:
    """RFC 7644 §3.6 DELETE, seed 000: access suspended at once, sessions revoked, memberships ended, the
    userName and externalId freed for a later provisioning (which links the kept person); history kept."""
    ws = cmd.workspace_id

    async def attempt() -> None:
        member = await _member(store, ws, cmd.member_id)
        _check_version(member.version, cmd.expected_version)
        wanted = _claim_ids(
            ws, [("userName", member.user_name), ("externalId", member.profile.get("externalId"))]
        )
        team_ids = await views.teams_of_member(store.pool, member.id)
        memberships = await store.load_many([membership_id(t, member.id) for t in team_ids])
        loaded = await store.load_many(wanted)
        claims = [
            c for c in (loaded.get(i) for i in wanted) if c is not None and c.owner_id == str(member.id)
        ]
        for claim in claims:
            claim.release()
        ended = [m for m in memberships.values() if m.present]
        for membership in ended:
            membership.remove()
        if member.status == "active":
            member.revoke_sessions(reason="deprovisioned by the identity provider")
        member.deprovision()
        await store.save(ws, [member, *claims, *ended], meta)

    await with_retry(attempt)


# --- groups (teams): RFC 7644 §3.3, §3.5.1, §3.5.2, §3.6; seed 000/002/004 ---
@dataclass(frozen=True)
class CreateTeam:
    workspace_id: UUID
    group: GroupInput


@dataclass(frozen=True)
class ReplaceTeam:
    workspace_id: UUID
    team_id: UUID
    group: GroupInput
    expected_version: int | None = None


@dataclass(frozen=True)
class PatchTeam:
    workspace_id: UUID
    team_id: UUID
    operations: list[dict[str, Any]]
    expected_version: int | None = None


@dataclass(frozen=True)
class ArchiveTeam:
    workspace_id: UUID
    team_id: UUID
    expected_version: int | None = None


async def _team(store: EventStore, ws: UUID, team_id: UUID) -> Team:
    team = await store.load(Team, team_id)
    if team is None or team.workspace_id != str(ws) or team.archived:
        raise UnknownResource(f"Group {team_id} not found")
    return team


async def _known_members(store: EventStore, ws: UUID, ids: tuple[str, ...]) -> list[UUID]:
    """The ids as member UUIDs; any id that is not a visible member of the workspace is invalidValue."""
    parsed: list[UUID] = []
    for raw in ids:
        try:
            parsed.append(UUID(raw))
        except ValueError:
            raise InvalidCommand(f"member {raw!r} is not a User of this workspace") from None
    known = await views.existing_members(store.pool, ws, parsed)
    missing = [str(i) for i in parsed if i not in known]
    if missing:
        raise InvalidCommand(f"members {', '.join(missing)} are not Users of this workspace")
    return parsed


async def _membership_changes(
    store: EventStore, ws: UUID, team_id: UUID, changes: list[group_patch.MemberChange]
) -> list[Membership]:
    """Apply member changes in order; returns the Membership aggregates that changed (no-ops dropped)."""
    present: dict[UUID, bool] = {}
    current: set[UUID] | None = None
    for change in changes:
        if change.kind in ("replace", "remove_all"):
            if current is None:
                current = set(await views.members_of_team(store.pool, team_id))
            for member in current | {m for m, p in present.items() if p}:
                present[member] = False
        ids = (
            await _known_members(store, ws, change.ids)
            if change.kind in ("add", "replace")
            else [UUID(i) for i in change.ids if _is_uuid(i)]
        )
        for member in ids:
            present[member] = change.kind != "remove"
    if not present:
        return []
    loaded = await store.load_many([membership_id(team_id, m) for m in present])
    out = []
    for member, want in present.items():
        existing = loaded.get(membership_id(team_id, member))
        if want:
            added = Membership.add(existing, str(ws), str(team_id), str(member))
            if added is not existing:
                out.append(added)
        elif existing is not None and existing.present:
            existing.remove()
            out.append(existing)
    return out


def _is_uuid(text: str) -> bool:
    try:
        UUID(text)
    except ValueError:
        return False
    return True


async def _save_team(
    store: EventStore,
    ws: UUID,
    team: Team,
    claims_before: tuple[str | None, str | None],
    memberships: list[Membership],
    meta: Metadata,
) -> None:
    old_name, old_external = claims_before
    wanted = _claim_ids(
        ws,
        [
            ("teamName", old_name),
            ("teamName", team.display_name),
            ("groupExternalId", old_external),
            ("groupExternalId", team.external_id),
        ],
    )
    loaded = await store.load_many(wanted)
    owner = str(team.id)
    claims = _claim_changes(ws, loaded, owner, "teamName", old_name, team.display_name)
    claims += _claim_changes(ws, loaded, owner, "groupExternalId", old_external, team.external_id)
    try:
        await store.save(ws, [team, *claims, *memberships], meta)
    except VersionConflict as error:
        _claim_conflict(error, wanted)
        raise


async def create_team(store: EventStore, cmd: CreateTeam, meta: Metadata) -> UUID:
    """Seed 000/002: pushing a group creates an IdP-managed team with its members."""
    ws, group = cmd.workspace_id, cmd.group
    team_id = uuid4()

    async def attempt() -> UUID:
        team = Team._create(
            Team.Created,
            id=team_id,
            workspace_id=str(ws),
            display_name=group.display_name,
            external_id=group.external_id,
            managed_by="idp",
        )
        changes = [group_patch.MemberChange("add", group.member_ids or ())]
        memberships = await _membership_changes(store, ws, team_id, changes)
        await _save_team(store, ws, team, (None, None), memberships, meta)
        return team_id

    return await with_retry(attempt)


async def replace_team(store: EventStore, cmd: ReplaceTeam, meta: Metadata) -> None:
    """RFC 7644 §3.5.1: name, externalId and (when given) the whole member list are replaced."""
    ws, group = cmd.workspace_id, cmd.group

    async def attempt() -> None:
        team = await _team(store, ws, cmd.team_id)
        _check_version(team.version, cmd.expected_version)
        before = (team.display_name, team.external_id)
        team.rename(group.display_name)
        team.change_external_id(group.external_id)
        changes = (
            [group_patch.MemberChange("replace", group.member_ids)] if group.member_ids is not None else []
        )
        memberships = await _membership_changes(store, ws, team.id, changes)
        await _save_team(store, ws, team, before, memberships, meta)

    await with_retry(attempt)


async def patch_team(store: EventStore, cmd: PatchTeam, meta: Metadata) -> None:
    """RFC 7644 §3.5.2 on a Group: members as set operations (scim.group_patch), the rest as usual."""
    ws = cmd.workspace_id
    changes, others = group_patch.split(cmd.operations)

    async def attempt() -> None:
        team = await _team(store, ws, cmd.team_id)
        _check_version(team.version, cmd.expected_version)
        before = (team.display_name, team.external_id)
        if others:
            view = {"schemas": [GROUP_URN], "id": str(team.id), "displayName": team.display_name}
            if team.external_id is not None:
                view["externalId"] = team.external_id
            patched = normalise({**apply_patch(view, others, "Group"), "schemas": [GROUP_URN]}, "Group")
            name = patched.get("displayName")
            if not isinstance(name, str) or not name.strip():
                raise InvalidCommand("displayName is required")
            team.rename(name)
            team.change_external_id(patched.get("externalId"))
        memberships = await _membership_changes(store, ws, team.id, changes)
        await _save_team(store, ws, team, before, memberships, meta)

    await with_retry(attempt)


async def archive_team(store: EventStore, cmd: ArchiveTeam, meta: Metadata) -> None:
    """RFC 7644 §3.6, seed 004: deleting a group archives its team; its name becomes free again."""
    ws = cmd.workspace_id

    async def attempt() -> None:
        team = await _team(store, ws, cmd.team_id)
        _check_version(team.version, cmd.expected_version)
        wanted = _claim_ids(ws, [("teamName", team.display_name), ("groupExternalId", team.external_id)])
        loaded = await store.load_many(wanted)
        claims = [c for c in (loaded.get(i) for i in wanted) if c is not None and c.owner_id == str(team.id)]
        for claim in claims:
            claim.release()
        team.archive()
        await store.save(ws, [team, *claims], meta)

    await with_retry(attempt)
