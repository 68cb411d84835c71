"""A member's or a team's history: its events in log order, each with the resource's state after it
(issue 7, "Audit API"). Pages follow log positions (``after``, ``limit``), so appends never shift a page.

A member's history is its own stream plus the workspace's events that name it (seat, admin, teams): small,
folded whole for each page. A team's history is its stream plus its membership events, which may be 100,000:
a page starts from the team's state at the cursor (computed by index scans, not by folding what came
before) and lists the member ids in a state only while the team has at most ``MEMBERS_IN_STATE`` members
(``member_count`` is always there).
"""

from __future__ import annotations

from typing import Any
from uuid import UUID

from scimledger.audit import entries, timeline
from scimledger.audit.point_in_time import Page
from scimledger.audit.timeline import Conn, MemberFold, TeamFold
from scimledger.domain.errors import UnknownResource

MEMBERS_IN_STATE = 100


def member_state(fold: MemberFold) -> dict[str, Any]:
    """The member's state: null fields before its creation event (a command's Workspace events, such as the
    seat it takes, come first in the log)."""
    return fold.values()


async def member_history(conn: Conn, workspace_id: UUID, member_id: UUID, *, after: int, limit: int) -> Page:
    if not await timeline.is_member(conn, workspace_id, member_id):
        raise UnknownResource(f"member {member_id} not found")
    fold = MemberFold(member_id)
    items: list[dict[str, Any]] = []
    more = False
    for row in await timeline.member_rows(conn, workspace_id, member_id, timeline.LATEST):
        if not fold.apply(row) or row["position"] <= after:
            continue
        if len(items) == limit:
            more = True
            break
        items.append({**entries.entry(row), "state": member_state(fold)})
    return Page(items, str(items[-1]["position"]) if more else None)


def team_state(fold: TeamFold) -> dict[str, Any]:
    team = fold.team
    state: dict[str, Any] = {
        "name": team.display_name if team else None,
        "external_id": team.external_id if team else None,
        "managed_by": team.managed_by if team else None,
        "archived": team.archived if team else None,
        "member_count": fold.count,
    }
    if fold.ids is not None and fold.count <= MEMBERS_IN_STATE:
        state["members"] = sorted(fold.ids)
    return state


async def team_history(conn: Conn, workspace_id: UUID, team_id: UUID, *, after: int, limit: int) -> Page:
    if not await timeline.is_team(conn, workspace_id, team_id):
        raise UnknownResource(f"team {team_id} not found")
    rows = await timeline.team_rows(conn, workspace_id, team_id, after_position=after, limit=limit + 1)
    page, more = rows[:limit], len(rows) > limit
    # Member ids are needed whenever the count may fall to MEMBERS_IN_STATE within this page.
    fold = await timeline.fold_team(conn, workspace_id, team_id, after, MEMBERS_IN_STATE + limit)
    items = [{**entries.entry(row), "state": team_state(fold)} for row in page if fold.apply(row)]
    return Page(items, str(page[-1]["position"]) if more else None)
