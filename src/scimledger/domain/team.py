"""The Team aggregate (a SCIM Group) and Membership (one member in one team).

Seed 000/002: pushing a group creates a team; a group can instead be linked to an existing team; deleting
the group archives the team; an admin can unlink it (it becomes app-managed and stays). A Membership has a
deterministic id from (team, member), so adding a member to a team of 100,000 costs the same as to a team
of 10, and two concurrent adds cannot lose each other.
"""

from __future__ import annotations

from uuid import UUID

from eventsourcing.domain import Aggregate, event

from scimledger.domain.base import reopen
from scimledger.domain.ids import membership_id
from scimledger.domain.limits import bounded


class Team(Aggregate):
    TOPIC = "Team"

    @event("Created", topic="TeamCreated")
    def __init__(
        self, workspace_id: str, display_name: str, external_id: str | None, managed_by: str
    ) -> None:
        self.workspace_id = workspace_id
        self.display_name = display_name
        self.external_id = external_id
        self.managed_by = managed_by
        self.archived = False

    def link(self, external_id: str | None) -> None:
        """An IdP takes over an app-managed team (seed 002: "Link Group")."""
        if self.managed_by != "idp" or external_id != self.external_id:
            self._link(external_id=external_id)

    @event("Linked", topic="TeamLinked")
    def _link(self, external_id: str | None) -> None:
        self.managed_by = "idp"
        self.external_id = external_id

    def rename(self, display_name: str) -> None:
        bounded("displayName", display_name)
        if display_name != self.display_name:
            self._rename(display_name=display_name)

    @event("Renamed", topic="TeamRenamed")
    def _rename(self, display_name: str) -> None:
        self.display_name = display_name

    def change_external_id(self, external_id: str | None) -> None:
        if external_id != self.external_id:
            self._change_external_id(external_id=external_id)

    @event("ExternalIdChanged", topic="TeamExternalIdChanged")
    def _change_external_id(self, external_id: str | None) -> None:
        self.external_id = external_id

    def unlink(self) -> None:
        if self.managed_by != "app":
            self._unlink()

    @event("Unlinked", topic="TeamUnlinked")
    def _unlink(self) -> None:
        self.managed_by = "app"

    def archive(self) -> None:
        if not self.archived:
            self._archive()

    @event("Archived", topic="TeamArchived")
    def _archive(self) -> None:
        self.archived = True


class Membership(Aggregate):
    TOPIC = "Membership"

    @event("Created", topic="TeamMemberAdded")
    def __init__(self, workspace_id: str, team_id: str, member_id: str, display: str | None = None) -> None:
        self.workspace_id = workspace_id
        self.team_id = team_id
        self.member_id = member_id
        self.display = display
        self.present = True

    @classmethod
    def add(
        cls,
        existing: Membership | None,
        workspace_id: str,
        team_id: str,
        member_id: str,
        display: str | None = None,
    ) -> Membership:
        """Add ``member_id`` to the team; a no-op (no event) when already present. ``display`` is the name the
        IdP gave the member (SCIM ``members.display``, immutable: kept as first set)."""
        kwargs = {
            "workspace_id": workspace_id,
            "team_id": team_id,
            "member_id": member_id,
            "display": display,
        }
        if existing is None:
            new_id = membership_id(UUID(team_id), UUID(member_id))
            return cls._create(cls.Created, id=new_id, **kwargs)
        if existing.present:
            return existing
        return reopen(existing, cls.Created, **kwargs)

    def remove(self) -> None:
        if self.present:
            self._remove(team_id=self.team_id, member_id=self.member_id)

    @event("Removed", topic="TeamMemberRemoved")
    def _remove(self, team_id: str, member_id: str) -> None:
        self.present = False
