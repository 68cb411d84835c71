"""Point-in-time answers, computed from the log and never from today's read model (issue 7, "Audit API").

A member, a team's members, the workspace's admins and its seats as they were at T: after every event
recorded at or before T (``timeline.position_at``); without T, after the whole log, computed the same way.
Each admin, seat holder and team member comes with the audit entry of the event that made them one ("who was
an admin on 1 March, and who made them one" is one request).
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from scimledger.audit import entries, timeline
from scimledger.audit.timeline import Conn
from scimledger.domain.errors import UnknownResource


@dataclass(frozen=True)
class Page:
    """One page of a list in log order: the items and the cursor of the next page (None: the last)."""

    items: list[dict[str, Any]]
    next_cursor: str | None


def _iso(value: datetime | None) -> str | None:
    """As the admin views render timestamps (``admin_views._iso``)."""
    return value.isoformat() if value is not None else None


async def member_at(conn: Conn, workspace_id: UUID, member_id: UUID, up_to: int) -> dict[str, Any]:
    """The member view of ``GET /api/v1/members/{id}`` (``admin_views.member``) as it was after ``up_to``:
    profile, status, role and management from the Member stream; the seat from the Workspace's seat events;
    the teams (archived ones left out, ordered by name) from its memberships and the teams' own streams."""
    if not await timeline.is_member(conn, workspace_id, member_id):
        raise UnknownResource(f"member {member_id} not found")
    fold = await timeline.fold_member(conn, workspace_id, member_id, up_to)
    member = fold.member
    if member is None:
        raise UnknownResource(f"member {member_id} did not exist yet at that time")
    teams = await timeline.teams_at(conn, workspace_id, [UUID(t) for t in fold.team_ids], up_to)
    listed = [{"id": str(i), "name": t.display_name} for i, t in teams.items() if not t.archived]
    return {
        "id": str(member_id),
        "user_name": member.user_name,
        "display_name": member.profile.get("displayName"),
        "status": member.status,
        "role": member.role,
        "managed_by": member.managed_by,
        "has_seat": fold.has_seat,
        "created": _iso(fold.created),
        "last_modified": _iso(fold.last_modified),
        "teams": sorted(listed, key=lambda t: (t["name"], t["id"])),
    }


async def team_members_at(
    conn: Conn, workspace_id: UUID, team_id: UUID, up_to: int, *, after: int, limit: int
) -> Page:
    """The team's members after ``up_to``, in the order they (last) joined, each with the TeamMemberAdded
    that added them and their userName at that time. A team that did not exist yet has none."""
    if not await timeline.is_team(conn, workspace_id, team_id):
        raise UnknownResource(f"team {team_id} not found")
    rows = await timeline.present_memberships(
        conn, workspace_id, team_id, up_to, after_position=after, limit=limit + 1
    )
    page, more = rows[:limit], len(rows) > limit
    memberships = timeline.memberships(page, team_id)
    names = await timeline.user_names_at(
        conn, workspace_id, [UUID(m.member_id) for m in memberships.values()], up_to
    )
    items = []
    for row in page:
        if (membership := memberships.get(row["position"])) is not None:
            items.append(
                {
                    "id": membership.member_id,
                    "user_name": names.get(UUID(membership.member_id)),
                    "display": membership.display,
                    "added": entries.entry(row),
                }
            )
    return Page(items, str(page[-1]["position"]) if more else None)


# --- the Workspace stream: admins and seats -----------------------------------------------------------------
def _still_held(granting: str, kinds: tuple[str, ...]) -> str:
    """SQL: the ``granting`` events of workspace ``$1`` after position ``$3`` and up to ``$2`` that no later
    event of ``kinds`` naming the same member (up to ``$2``) undid — the facts that held at ``$2`` — in log
    order, at most ``$4``. These are Workspace events: a workspace has one Workspace stream, its own id
    (checked by the caller on each row).

    Shaped so that every plan, a generic one included, walks the ``(workspace_id, event_type, position)``
    index over the position range and checks each candidate with one probe of the member index; naming the
    Workspace stream here would let a generic plan take its id for a short stream and sort all of it."""
    listed = ", ".join(f"'{k}'" for k in kinds)
    return f"""
        SELECT {entries.COLUMNS} FROM events g
         WHERE g.workspace_id = $1 AND g.event_type = '{granting}' AND g.position > $3 AND g.position <= $2
           AND (SELECT 1 FROM events later
                 WHERE later.workspace_id = $1 AND (later.data->>'member_id') = (g.data->>'member_id')
                   AND later.position > g.position AND later.position <= $2
                   AND later.event_type IN ({listed})
                 LIMIT 1) IS NULL
         ORDER BY g.position
         LIMIT $4
    """


ADMINS_SQL = _still_held("WorkspaceAdminGranted", tuple(timeline.ADMIN_EVENTS))
HOLDERS_SQL = _still_held("SeatAssigned", tuple(timeline.SEAT_EVENTS))


async def _holders(
    conn: Conn, sql: str, workspace_id: UUID, up_to: int, *, after: int, limit: int | None, key: str
) -> Page:
    """Members for whom a fact held after ``up_to`` (``sql`` from ``_still_held``), each with the entry of
    the event that made it hold, under ``key``. ``limit`` None: all of them."""
    rows = await conn.fetch(sql, workspace_id, up_to, after, None if limit is None else limit + 1)
    page, more = (rows, False) if limit is None else (rows[:limit], len(rows) > limit)
    own = [row for row in page if row["stream_id"] == workspace_id]
    decoded = [(row, str(timeline.decode(row).member_id)) for row in own]
    names = await timeline.user_names_at(conn, workspace_id, [UUID(m) for _, m in decoded], up_to)
    items = [
        {"member_id": member, "user_name": names.get(UUID(member)), key: entries.entry(row)}
        for row, member in decoded
    ]
    return Page(items, str(page[-1]["position"]) if more else None)


async def admins_at(conn: Conn, workspace_id: UUID, up_to: int) -> list[dict[str, Any]]:
    """The active admins after ``up_to`` (the Workspace aggregate's ``admins``: granted and not revoked
    since), in the order they were made admin, each with the WorkspaceAdminGranted that made them one."""
    page = await _holders(conn, ADMINS_SQL, workspace_id, up_to, after=0, limit=None, key="granted")
    return page.items


async def seat_totals_at(conn: Conn, workspace_id: UUID, up_to: int) -> dict[str, int]:
    """Seats total, assigned and available after ``up_to``, as the Workspace aggregate counts them
    (``domain.workspace``: SeatAdded adds its ``count``, SeatAssigned takes a seat, SeatReleased frees one).
    The SeatAdded events are decoded; the others are counted on the ``(workspace_id, event_type, position)``
    index (these are Workspace events, and a workspace's one Workspace stream is its own id)."""
    row = await conn.fetchrow(
        """
        SELECT (SELECT count(*) FROM events
                 WHERE workspace_id = $1 AND event_type = 'SeatAssigned' AND position <= $2) AS assigned,
               (SELECT count(*) FROM events
                 WHERE workspace_id = $1 AND event_type = 'SeatReleased' AND position <= $2) AS released,
               ARRAY(SELECT state FROM events
                      WHERE workspace_id = $1 AND event_type = 'SeatAdded' AND position <= $2) AS added
        """,
        workspace_id,
        up_to,
    )
    assert row is not None
    total = sum(int(timeline.MAPPER.transcoder.decode(bytes(state))["count"]) for state in row["added"])
    assigned = int(row["assigned"]) - int(row["released"])
    return {"total": total, "assigned": assigned, "available": total - assigned}


async def seat_holders_at(conn: Conn, workspace_id: UUID, up_to: int, *, after: int, limit: int) -> Page:
    """The members holding a seat after ``up_to`` (an invite reserves one), in the order they got it, each
    with the SeatAssigned that gave it."""
    return await _holders(conn, HOLDERS_SQL, workspace_id, up_to, after=after, limit=limit, key="assigned")
