"""Seats and admins follow a member's status and role (seed 000): one rule, used by every command.

Provisioning or reactivating takes a seat (an invite reserves one); suspension and deprovisioning free it.
An active admin counts for last-admin protection; losing that (suspension, deprovisioning, downgrade) is
refused for the last one. The Workspace decides both, so each such command saves the workspace too.
"""

from __future__ import annotations

from dataclasses import dataclass

from scimledger.domain.member import Member
from scimledger.domain.workspace import Workspace


@dataclass(frozen=True)
class Before:
    """What a member held before a command changed it."""

    had_seat: bool
    was_admin: bool

    @classmethod
    def of(cls, member: Member | None) -> Before:
        if member is None:
            return cls(False, False)
        return cls(member.has_seat, member.is_active_admin)


def reconcile(workspace: Workspace, member: Member, before: Before) -> None:
    """Bring the workspace's seats and admins in line with the member's new status and role.

    Frees before it takes, so a command never fails for lack of a seat it is giving back; raises
    NoFreeSeat or LastAdmin (and then the caller saves nothing)."""
    member_id = str(member.id)
    if before.was_admin and not member.is_active_admin:
        workspace.revoke_admin(member_id)
    if before.had_seat and not member.has_seat:
        workspace.release_seat(member_id)
    if member.has_seat and not before.had_seat:
        workspace.assign_seat(member_id)
    if member.is_active_admin and not before.was_admin:
        workspace.grant_admin(member_id)


def touches_workspace(member: Member, new_status: str, new_role: str) -> bool:
    """Whether moving ``member`` to ``new_status``/``new_role`` changes seats or admins."""
    from scimledger.domain.member import holds_seat

    admin_after = new_status == "active" and new_role == "admin"
    return holds_seat(new_status) != member.has_seat or admin_after != member.is_active_admin
