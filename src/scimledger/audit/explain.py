"""Why a member is as they are: for their status, role, management, seat, admin rights and each team, the
current value and the event that set it (issue 7, "Audit API": "the event that set each, with time, actor,
token and request id"). Computed by folding the member's events from the log (``timeline.MemberFold``); the
event is shown as its audit entry.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from scimledger.audit import entries, timeline
from scimledger.audit.timeline import Conn
from scimledger.domain.errors import UnknownResource

# What is explained, as (answer key, MemberFold field).
EXPLAINED = (
    ("status", "status"),
    ("role", "role"),
    ("managed_by", "managed_by"),
    ("seat", "has_seat"),
    ("admin", "admin"),
)


async def explain_member(conn: Conn, workspace_id: UUID, member_id: UUID, up_to: int) -> dict[str, Any]:
    """Each explained value with the audit entry of the last event that changed it (a value the member was
    created with: its creation event); the teams, archived ones left out as in the member view, with the
    event that added the member."""
    if not await timeline.is_member(conn, workspace_id, member_id):
        raise UnknownResource(f"member {member_id} not found")
    fold = await timeline.fold_member(conn, workspace_id, member_id, up_to)
    if fold.member is None:
        raise UnknownResource(f"member {member_id} did not exist yet at that time")
    values = fold.values()
    out: dict[str, Any] = {"member_id": str(member_id), "user_name": values["user_name"]}
    for key, field in EXPLAINED:
        out[key] = {"value": values[field], "event": entries.entry(fold.set_by[field])}
    teams = await timeline.teams_at(conn, workspace_id, [UUID(t) for t in fold.team_ids], up_to)
    listed = [
        {
            "id": str(team_id),
            "name": team.display_name,
            "event": entries.entry(fold.team_set_by[str(team_id)]),
        }
        for team_id, team in teams.items()
        if not team.archived
    ]
    out["teams"] = sorted(listed, key=lambda t: (t["name"], t["id"]))
    return out
