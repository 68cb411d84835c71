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
from scimledger.domain.access import Before, reconcile, touches_workspace
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
    """RFC 7644 §3.3 create, with the workspace rules of seed 000:

    - a userName in a verified domain is added directly (MemberProvisioned, or MemberLinked when the person
      already exists); otherwise the person is invited (MemberInvited) and joins on accepting;
    - the member takes a seat (an invite reserves one): NoFreeSeat without one, unless automatic seat
      assignment buys it; ``roles`` containing admin makes an admin;
    - a userName held by an app-managed member of this workspace links that member (see ``_adopt``);
      one held by an IdP-managed member is 409 ``uniqueness``.
    """
    ws = cmd.workspace_id
    external_id = cmd.profile.get("externalId")
    user_claim = UniquenessClaim.id_for(ws, "userName", cmd.user_name)
    wanted = {user_claim: ("userName", cmd.user_name)}
    if isinstance(external_id, str):
        wanted[UniquenessClaim.id_for(ws, "externalId", external_id)] = ("externalId", external_id)
    member_id = uuid4()
    person_key = Person.id_for(cmd.user_name)
    role = role_from_values(_roles(cmd.profile))

    async def attempt() -> UUID:
        async with store.workspaces.hold(ws) as workspace:
            loaded = await store.load_many([person_key, *wanted])
            holder = await _claim_holder(store, loaded.get(user_claim))
            if holder is not None:
                if holder.managed_by == "idp":
                    raise AlreadyTaken("userName", cmd.user_name)
                return await _adopt(store, workspace, holder, cmd, loaded, wanted, meta)
            claims = [
                UniquenessClaim.take(loaded.get(claim_id), ws, kind, value, str(member_id))
                for claim_id, (kind, value) in wanted.items()
            ]
            person = loaded.get(person_key)
            changed: list[Any] = []
            if person is None:
                person = Person.register(cmd.user_name)
                changed.append(person)
            how, status = _how_to_add(workspace, cmd.user_name, person_is_new=bool(changed))
            member = Member.start(
                how,
                member_id,
                workspace_id=str(ws),
                person_id=str(person.id),
                user_name=cmd.user_name,
                profile=cmd.profile,
                role=role,
                managed_by="idp",
                status=status,
            )
            if not cmd.active:
                member.suspend(reason="provisioned inactive")
            reconcile(workspace, member, Before.of(None))
            try:
                await store.save(ws, [workspace, *changed, member, *claims], meta)
            except VersionConflict as error:
                _claim_conflict(error, wanted)
                raise
            return member_id

    return await with_retry(attempt)


def _how_to_add(
    workspace: Workspace, user_name: str, *, person_is_new: bool
) -> tuple[type[Member.Created], str]:
    """Seed 000: verified domain → added directly (provisioned or linked); otherwise invited."""
    if not workspace.is_verified_email(user_name):
        return Member.Invited, "invited"
    return (Member.Created if person_is_new else Member.Linked), "active"


async def _claim_holder(store: EventStore, claim: UniquenessClaim | None) -> Member | None:
    """The visible member holding a userName claim, if any."""
    if claim is None or claim.owner_id is None:
        return None
    member = await store.load(Member, UUID(claim.owner_id))
    return member if member is not None and member.visible else None


async def _adopt(
    store: EventStore,
    workspace: Workspace,
    member: Member,
    cmd: ProvisionUser,
    loaded: dict[UUID, Any],
    wanted: dict[UUID, tuple[str, str]],
    meta: Metadata,
) -> UUID:
    """Seed 000 "linked rather than provisioned": the IdP provisions a person this workspace manages in the
    app. Through a verified domain the member becomes IdP-managed at once; otherwise the person is asked
    (MemberLinkRequested, an invite) and the IdP manages them only once they accept."""
    ws = cmd.workspace_id
    before = Before.of(member)
    if not workspace.is_verified_email(cmd.user_name):
        member.request_link()
        await store.save(ws, [member], meta)
        return member.id
    claims = [
        UniquenessClaim.take(loaded.get(claim_id), ws, kind, value, str(member.id))
        for claim_id, (kind, value) in wanted.items()
    ]
    member.change_manager("idp")
    member.change_profile(cmd.user_name, cmd.profile)
    member.change_role(role_from_values(_roles(cmd.profile)))
    _apply_active(member, cmd.active, "deactivated by the identity provider")
    reconcile(workspace, member, before)
    try:
        await store.save(ws, [workspace, member, *claims], meta)
    except VersionConflict as error:
        _claim_conflict(error, wanted)
        raise
    return member.id


def _apply_active(member: Member, active: bool, reason: str) -> None:
    """SCIM ``active``: false suspends at once and revokes sessions (seed 000); true reactivates."""
    if not active and member.status in ("active", "invited"):
        member.suspend(reason=reason)
        member.revoke_sessions(reason=reason)
    elif active and member.status == "suspended":
        member.reactivate()


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
    """Load the member, let ``decide`` compute its new state, record the differences (or nothing).

    Attribute-only changes don't touch the workspace; a change of status or role (seats, admins) runs
    under the workspace's per-process gate and saves the workspace with it."""

    async def attempt(workspace: Workspace | None) -> bool:
        member = await _member(store, ws, member_id)
        _check_version(member.version, expected)
        if member.managed_by != "idp":
            raise UnknownResource(f"User {member_id} is not managed by the identity provider")
        new = decide(member)
        if new is None:
            return True
        role = role_from_values(_roles(new.profile))
        status = _status_after(member, new.active)
        if workspace is None and touches_workspace(member, status, role):
            return False
        before = Before.of(member)
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
        member.change_role(role)
        _apply_active(member, new.active, "deactivated by the identity provider")
        changed: list[Any] = [member, *claims]
        if workspace is not None:
            reconcile(workspace, member, before)
            changed.insert(0, workspace)
        try:
            await store.save(ws, changed, meta)
        except VersionConflict as error:
            _claim_conflict(error, wanted)
            raise
        return True

    async def without_workspace() -> bool:
        return await attempt(None)

    async def with_workspace() -> bool:
        async with store.workspaces.hold(ws) as workspace:
            return await attempt(workspace)

    if not await with_retry(without_workspace):
        await with_retry(with_workspace)


def _status_after(member: Member, active: bool) -> str:
    if not active and member.status in ("active", "invited"):
        return "suspended"
    if active and member.status == "suspended":
        return "active"
    return member.status


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
    """RFC 7644 §3.6 DELETE, seed 000: access suspended at once, sessions revoked, seat released, memberships
    ended, the userName and externalId freed for a later provisioning (which links the kept person); the
    last admin is protected; history kept."""
    ws = cmd.workspace_id

    async def attempt() -> None:
        async with store.workspaces.hold(ws) as workspace:
            member = await _member(store, ws, cmd.member_id)
            _check_version(member.version, cmd.expected_version)
            if member.managed_by != "idp":
                raise UnknownResource(f"User {cmd.member_id} is not managed by the identity provider")
            before = Before.of(member)
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
            if member.status in ("active", "invited"):
                member.revoke_sessions(reason="deprovisioned by the identity provider")
            member.deprovision()
            reconcile(workspace, member, before)
            await store.save(ws, [workspace, member, *claims, *ended], meta)

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
