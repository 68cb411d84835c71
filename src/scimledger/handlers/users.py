"""User commands: provision, replace, patch, deprovision (RFC 7644 §3.3, §3.5, §3.6; seed 000)."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any
from uuid import UUID, uuid4

from scimledger import views
from scimledger.domain import Member, Person, Workspace
from scimledger.domain.access import Before, reconcile, touches_workspace
from scimledger.domain.errors import AlreadyTaken, NotManaged, UnknownResource
from scimledger.domain.ids import membership_id
from scimledger.domain.limits import bounded
from scimledger.domain.member import role_from_values
from scimledger.domain.names import user_name_key
from scimledger.handlers.common import check_version, with_retry
from scimledger.scim.patch import apply_patch
from scimledger.scim.schemas import ENTERPRISE_USER_URN, USER_URN
from scimledger.scim.users import UserInput, user_from_body
from scimledger.store.event_store import EventStore, Metadata
from scimledger.store.workspace_cache import Decision


# --- provision (RFC 7644 §3.3) ---
@dataclass(frozen=True)
class ProvisionUser:
    """RFC 7644 §3.3: create a User. ``profile`` holds the SCIM attributes (no password). ``managed_by`` is
    ``app`` when an admin adds the member through the admin API."""

    workspace_id: UUID
    user_name: str
    profile: dict[str, Any] = field(default_factory=dict)
    active: bool | None = True
    managed_by: str = "idp"


def _roles(profile: dict[str, Any]) -> list[str]:
    roles = profile.get("roles")
    if not isinstance(roles, list):
        return []
    return [r["value"] for r in roles if isinstance(r, dict) and isinstance(r.get("value"), str)]


@dataclass(frozen=True)
class Provisioned:
    """The member a provisioning made (``new``) or linked (an existing app-managed member)."""

    member: Member
    new: bool


async def provision_user(store: EventStore, cmd: ProvisionUser, meta: Metadata) -> Provisioned:
    """RFC 7644 §3.3 create, with the workspace rules of seed 000:

    - a userName in a verified domain is added directly (MemberProvisioned, or MemberLinked when the person
      was a member of this workspace before); otherwise the person is invited (MemberInvited) and joins on
      accepting;
    - what is decided and appended never depends on other workspaces (issue 8: no existence oracle): the
      person's id is derived from the email, and whether the person is new to the product (their welcome)
      is decided by the outbox projection, out of the workspace's sight;
    - the member takes a seat (an invite reserves one): NoFreeSeat without one, unless automatic seat
      assignment buys it; ``roles`` containing admin makes an admin;
    - a userName held by an app-managed member of this workspace links that member (see ``_adopt``);
      one held by an IdP-managed member is 409 ``uniqueness``.
    """
    ws = cmd.workspace_id
    bounded("userName", cmd.user_name)
    external = cmd.profile.get("externalId")
    external_id = external if isinstance(external, str) else None
    name_key = user_name_key(cmd.user_name)
    unique = frozenset({("userName", name_key), *([("externalId", external_id)] if external_id else [])})
    member_id = uuid4()
    person_id = str(Person.id_for(cmd.user_name))
    role = role_from_values(_roles(cmd.profile))

    async def attempt() -> Provisioned:
        held = await views.holders(store.pool, ws, name_key, external_id, UUID(person_id))
        if held.user_name is not None:
            holder = await store.load(Member, held.user_name)
            if holder is None or holder.managed_by == "idp" or cmd.managed_by != "idp":
                raise AlreadyTaken("userName", cmd.user_name)
            if external_id is not None and held.external_id not in (None, holder.id):
                raise AlreadyTaken("externalId", external_id)
            async with store.workspaces.hold(ws) as workspace:
                return Provisioned(await _adopt(store, workspace, holder, cmd, meta), new=False)
        if external_id is not None and held.external_id is not None:
            raise AlreadyTaken("externalId", external_id)

        def decide(workspace: Workspace) -> Decision[Member]:
            """On the workspace (batched with other commands): how the member joins, seat and admin."""
            how, status = _how_to_add(workspace, cmd.user_name, known_here=held.was_member)
            member = Member.start(
                how,
                member_id,
                workspace_id=str(ws),
                person_id=person_id,
                user_name=cmd.user_name,
                profile=cmd.profile,
                role=role,
                managed_by=cmd.managed_by,
                status=status,
            )
            if cmd.active is False:
                member.suspend(reason="provisioned inactive")
            reconcile(workspace, member, Before.of(None))
            return Decision([member], meta, member, unique)

        result: Member = await store.workspaces.submit(ws, decide)
        return Provisioned(result, new=True)

    return await with_retry(attempt)


def _how_to_add(
    workspace: Workspace, user_name: str, *, known_here: bool
) -> tuple[type[Member.Created], str]:
    """Seed 000: verified domain → added directly (linked when the person was a member of this workspace
    before, else provisioned); otherwise invited."""
    if not workspace.is_verified_email(user_name):
        return Member.Invited, "invited"
    return (Member.Linked if known_here else Member.Created), "active"


async def _adopt(
    store: EventStore, workspace: Workspace, member: Member, cmd: ProvisionUser, meta: Metadata
) -> Member:
    """Seed 000 "linked rather than provisioned": the IdP provisions a person this workspace manages in the
    app. Through a verified domain the member becomes IdP-managed at once; otherwise the person is asked
    (MemberLinkRequested, an invite) and the IdP manages them only once they accept."""
    ws = cmd.workspace_id
    before = Before.of(member)
    if not workspace.is_verified_email(cmd.user_name):
        member.request_link(cmd.profile, role_from_values(_roles(cmd.profile)))
        await store.save(ws, [member], meta)
        return member
    member.change_manager("idp")
    member.change_profile(cmd.user_name, cmd.profile)
    member.change_role(role_from_values(_roles(cmd.profile)))
    _apply_active(member, cmd.active, "deactivated by the identity provider")
    reconcile(workspace, member, before)
    await store.save(ws, [workspace, member], meta)
    return member


def _apply_active(member: Member, active: bool | None, reason: str) -> None:
    """SCIM ``active``: false suspends at once and revokes sessions (seed 000); true reactivates;
    unassigned (None) changes nothing."""
    if active is False and member.status in ("active", "invited"):
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


async def _member(store: EventStore, workspace_id: UUID, member_id: UUID) -> Member:
    member = await store.load(Member, member_id)
    if member is None or member.workspace_id != str(workspace_id) or not member.visible:
        raise UnknownResource(f"User {member_id} not found")
    return member


def user_view(member: Member) -> dict[str, Any]:
    """The SCIM User that a PATCH applies to (RFC 7644 §3.5.2): stored attributes, id, active."""
    schemas = [USER_URN, *([ENTERPRISE_USER_URN] if ENTERPRISE_USER_URN in member.profile else [])]
    view = {"schemas": schemas, "id": str(member.id), **member.profile}
    if "active" in view and view["active"] is None:
        del view["active"]  # unassigned (RFC 7643 §2.5): access stays as it is
    else:
        view["active"] = member.status != "suspended"
    return view


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
        check_version(member.version, expected)
        if member.managed_by != "idp":
            raise NotManaged(f"User {member_id} is managed in the app, not by the identity provider")
        new = decide(member)
        if new is None:
            return True
        role = role_from_values(_roles(new.profile))
        status = _status_after(member, new.active)
        if workspace is None and touches_workspace(member, status, role):
            return False
        before = Before.of(member)
        await _check_unique(store, member, new)
        member.change_profile(new.user_name, new.profile)
        member.change_role(role)
        _apply_active(member, new.active, "deactivated by the identity provider")
        changed: list[Any] = [member]
        if workspace is not None:
            reconcile(workspace, member, before)
            changed.insert(0, workspace)
        await store.save(ws, changed, meta)
        return True

    async def without_workspace() -> bool:
        return await attempt(None)

    async def with_workspace() -> bool:
        async with store.workspaces.hold(ws) as workspace:
            return await attempt(workspace)

    if not await with_retry(without_workspace):
        await with_retry(with_workspace)


async def _check_unique(store: EventStore, member: Member, new: UserInput) -> None:
    """A new userName or externalId must not be another visible member's (README "Identity rule"); a
    concurrent change to the same value fails on the unique index at commit and is decided again."""
    name_key = user_name_key(new.user_name)
    external = new.profile.get("externalId")
    external_id = external if isinstance(external, str) else None
    name_changes = name_key != user_name_key(member.user_name)
    external_changes = external_id is not None and external_id != member.profile.get("externalId")
    if not (name_changes or external_changes):
        return
    held = await views.holders(
        store.pool,
        UUID(member.workspace_id),
        name_key if name_changes else None,
        external_id if external_changes else None,
    )
    if held.user_name not in (None, member.id):
        raise AlreadyTaken("userName", new.user_name)
    if held.external_id not in (None, member.id):
        raise AlreadyTaken("externalId", str(external_id))


def _status_after(member: Member, active: bool | None) -> str:
    if active is None:
        return member.status
    if not active and member.status in ("active", "invited"):
        return "suspended"
    if active and member.status == "suspended":
        return "active" if member.joined else "invited"
    return member.status


async def replace_user(store: EventStore, cmd: ReplaceUser, meta: Metadata) -> None:
    """RFC 7644 §3.5.1: PUT replaces every writable attribute; those not given are cleared."""
    await _update_user(store, cmd.workspace_id, cmd.member_id, lambda _: cmd.user, cmd.expected_version, meta)


async def patch_user(store: EventStore, cmd: PatchUser, meta: Metadata) -> None:
    """RFC 7644 §3.5.2: apply the operations atomically to the current User, then record the result."""

    def decide(member: Member) -> UserInput:
        patched = apply_patch(user_view(member), cmd.operations, "User")
        patched.pop("id", None)
        return user_from_body(patched, default_active=None)

    await _update_user(store, cmd.workspace_id, cmd.member_id, decide, cmd.expected_version, meta)


async def deprovision_user(store: EventStore, cmd: DeprovisionUser, meta: Metadata) -> None:
    """RFC 7644 §3.6 DELETE, seed 000: access suspended at once, sessions revoked, seat released, memberships
    ended, the userName and externalId freed for a later provisioning (which links the kept person); the
    last admin is protected; history kept."""
    ws = cmd.workspace_id

    async def attempt() -> None:
        async with store.workspaces.hold(ws) as workspace:
            member = await _member(store, ws, cmd.member_id)
            check_version(member.version, cmd.expected_version)
            if member.managed_by != "idp":
                raise NotManaged(f"User {cmd.member_id} is managed in the app, not by the identity provider")
            before = Before.of(member)
            team_ids = await views.teams_of_member(store.pool, member.id)
            memberships = await store.load_many([membership_id(t, member.id) for t in team_ids])
            # The userName and externalId are free again as the member's row turns deprovisioned (the
            # unique indexes cover visible members only; claims made before issue 9 are no longer read).
            ended = [m for m in memberships.values() if m.present]
            for membership in ended:
                membership.remove()
            if member.status in ("active", "invited"):
                member.revoke_sessions(reason="deprovisioned by the identity provider")
            member.deprovision()
            reconcile(workspace, member, before)
            await store.save(ws, [workspace, member, *ended], meta)

    await with_retry(attempt)
