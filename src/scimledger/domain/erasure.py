"""Who may be erased, and what erasing a membership records (issue 11; README "Erasure (crypto-shredding)").

A member may be erased once deprovisioned, or when they never got further than an invite (invited, or
suspended before accepting): nobody's access changes then. The last admin of a workspace never is. An
invite not yet deprovisioned is withdrawn in the same command (``MemberDeprovisioned``, its reserved seat
released), then ``PersonalDataErased`` records who asked and why. The store destroys the member's data key
in the same transaction (``handlers/erase.py``).
"""

from __future__ import annotations

from scimledger.domain.access import Before, reconcile
from scimledger.domain.errors import LastAdmin
from scimledger.domain.member import Member
from scimledger.domain.personal import AlreadyErased, NotErasable
from scimledger.domain.workspace import Workspace


def check(workspace: Workspace, member: Member) -> None:
    """Raise AlreadyErased, LastAdmin or NotErasable unless ``member`` may be erased now."""
    if member.erased:
        raise AlreadyErased(f"member {member.id}'s personal data is already erased")
    if workspace.admins == [str(member.id)]:
        raise LastAdmin("the last remaining admin of a workspace cannot be erased")
    if member.status != "deprovisioned" and member.joined:
        raise NotErasable(
            f"member {member.id} is {member.status}: only a deprovisioned member, or one who never "
            "accepted an invite, can be erased; deprovision it first (SCIM DELETE)"
        )


def erase(workspace: Workspace, member: Member, *, reason: str | None, requested_by: dict[str, str]) -> None:
    """Withdraw a pending invite (deprovisioned, seat released), then record the erasure."""
    check(workspace, member)
    if member.status != "deprovisioned":
        before = Before.of(member)
        member.deprovision()
        reconcile(workspace, member, before)
    member.erase(reason, requested_by)
