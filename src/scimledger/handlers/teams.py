"""Team commands: SCIM Groups as teams (RFC 7644 §3.3-§3.6; seeds 000, 002, 004)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any
from uuid import UUID, uuid4

from scimledger import views
from scimledger.domain import Membership, Team, UniquenessClaim
from scimledger.domain.errors import InvalidCommand, NotManaged, UnknownResource
from scimledger.domain.ids import membership_id
from scimledger.domain.limits import bounded
from scimledger.handlers.common import check_version, claim_changes, claim_conflict, claim_ids, with_retry
from scimledger.scim import group_patch
from scimledger.scim.patch import apply_patch
from scimledger.scim.schemas import GROUP_URN
from scimledger.scim.users import GroupInput, normalise
from scimledger.store.event_store import EventStore, Metadata
from scimledger.store.recorder import VersionConflict


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


async def _team(store: EventStore, ws: UUID, team_id: UUID, *, idp_write: bool = True) -> Team:
    """The team; an IdP write to an app-managed team links it first (TeamLinked, seed 002)."""
    team = await store.load(Team, team_id)
    if team is None or team.workspace_id != str(ws) or team.archived:
        raise UnknownResource(f"Group {team_id} not found")
    if idp_write and team.managed_by != "idp":
        team.link(team.external_id)
    return team


async def _check_group_version(store: EventStore, team: Team, expected: int | None) -> None:
    """RFC 7644 §3.14 ``If-Match``: against the group's version as its ETag shows it, which moves with its
    members too (``views.group_version``), not the Team stream's."""
    if expected is not None:
        check_version(await views.group_version(store.pool, team.id) or team.version, expected)


async def _known_members(store: EventStore, ws: UUID, ids: tuple[str, ...]) -> list[UUID]:
    """The ids that are visible members of the workspace. Seed 002: "members of that group who are already
    in your workspace are added to the team"; the others are skipped (an IdP may push a group before it
    provisions everyone in it)."""
    parsed = [UUID(raw) for raw in ids if _is_uuid(raw)]
    known = await views.existing_members(store.pool, ws, parsed)
    return [i for i in parsed if i in known]


async def _membership_changes(
    store: EventStore, ws: UUID, team_id: UUID, changes: list[group_patch.MemberChange]
) -> list[Membership]:
    """Apply member changes in order; returns the Membership aggregates that changed (no-ops dropped)."""
    present: dict[UUID, bool] = {}
    displays: dict[UUID, str] = {}
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
            if str(member) in change.displays:
                displays[member] = change.displays[str(member)]
    if not present:
        return []
    loaded = await store.load_many([membership_id(team_id, m) for m in present])
    out = []
    for member, want in present.items():
        existing = loaded.get(membership_id(team_id, member))
        if want:
            added = Membership.add(existing, str(ws), str(team_id), str(member), displays.get(member))
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
    wanted = claim_ids(
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
    claims = claim_changes(ws, loaded, owner, "teamName", old_name, team.display_name)
    claims += claim_changes(ws, loaded, owner, "groupExternalId", old_external, team.external_id)
    try:
        await store.save(ws, [team, *claims, *memberships], meta)
    except VersionConflict as error:
        claim_conflict(error, wanted)
        raise


async def _linkable_team(store: EventStore, ws: UUID, display_name: str) -> Team | None:
    """Seed 002 "Link Group": an app-managed team whose name equals the pushed group's exactly."""
    claim = await store.load(UniquenessClaim, UniquenessClaim.id_for(ws, "teamName", display_name))
    if claim is None or claim.owner_id is None:
        return None
    team = await store.load(Team, UUID(claim.owner_id))
    if team is None or team.archived or team.managed_by != "app" or team.display_name != display_name:
        return None
    return team


async def create_team(store: EventStore, cmd: CreateTeam, meta: Metadata) -> UUID:
    """Seed 000/002: pushing a group creates an IdP-managed team with the members who are already in the
    workspace, or links the app-managed team of exactly that name (case-sensitive) instead."""
    ws, group = cmd.workspace_id, cmd.group
    team_id = uuid4()

    async def attempt() -> UUID:
        linked = await _linkable_team(store, ws, group.display_name)
        if linked is not None:
            before = (linked.display_name, linked.external_id)
            linked.link(group.external_id)
            changes = [group_patch.MemberChange("add", group.member_ids or (), group.member_displays)]
            memberships = await _membership_changes(store, ws, linked.id, changes)
            await _save_team(store, ws, linked, before, memberships, meta)
            return linked.id
        bounded("displayName", group.display_name)
        team = Team._create(
            Team.Created,
            id=team_id,
            workspace_id=str(ws),
            display_name=group.display_name,
            external_id=group.external_id,
            managed_by="idp",
        )
        changes = [group_patch.MemberChange("add", group.member_ids or (), group.member_displays)]
        memberships = await _membership_changes(store, ws, team_id, changes)
        await _save_team(store, ws, team, (None, None), memberships, meta)
        return team_id

    return await with_retry(attempt)


async def replace_team(store: EventStore, cmd: ReplaceTeam, meta: Metadata) -> None:
    """RFC 7644 §3.5.1: name, externalId and (when given) the whole member list are replaced."""
    ws, group = cmd.workspace_id, cmd.group

    async def attempt() -> None:
        team = await _team(store, ws, cmd.team_id)
        await _check_group_version(store, team, cmd.expected_version)
        before = (team.display_name, team.external_id)
        team.rename(group.display_name)
        team.change_external_id(group.external_id)
        changes = (
            [group_patch.MemberChange("replace", group.member_ids, group.member_displays)]
            if group.member_ids is not None
            else []
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
        await _check_group_version(store, team, cmd.expected_version)
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
        team = await _team(store, ws, cmd.team_id, idp_write=False)
        if team.managed_by != "idp":
            raise NotManaged(f"Group {cmd.team_id} is a team managed in the app; the IdP cannot delete it")
        await _check_group_version(store, team, cmd.expected_version)
        wanted = claim_ids(ws, [("teamName", team.display_name), ("groupExternalId", team.external_id)])
        loaded = await store.load_many(wanted)
        claims = [c for c in (loaded.get(i) for i in wanted) if c is not None and c.owner_id == str(team.id)]
        for claim in claims:
            claim.release()
        team.archive()
        await store.save(ws, [team, *claims], meta)

    await with_retry(attempt)
