"""A member's or a team's events from the log, folded with the app's own domain code (issue 7, "Audit API").

Rows are selected from ``events``; the jsonb ``data`` only finds the rows that name a member or a team,
through the indexes on ``(workspace_id, (data->>'member_id'), position)`` and
``(workspace_id, (data->>'team_id'), position)``. What is shown is decoded from ``events.state`` with the
app's mapper (``store.mapper``) and folded with ``domain.base.replay``; a row whose decoded event does not
name the resource it was selected for is ignored (the bytes the chain covers decide, not the jsonb copy).

"At T" means every event recorded at or before T. ``recorded_at`` is taken under the append lock and never
decreases in position order (``schema.sql``, section 1), so those events are a prefix of the log: the events
up to ``position_at(T)``. Every loader takes that position bound (``up_to``; ``LATEST``: the whole log),
which the indexes above use as a range. A member's state combines its own stream (the ``Member``
aggregate), the Workspace stream's seat and admin events that name it, and its ``Membership`` streams (one
per team).
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping, Sequence
from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from projections import scim_users
from scimledger.audit import entries
from scimledger.domain import Member, Membership, Team
from scimledger.domain.base import replay
from scimledger.store.mapper import build_mapper

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection
Row: TypeAlias = Mapping[str, Any]

MAPPER = build_mapper()
MEMBER_CREATED = ("MemberProvisioned", "MemberInvited", "MemberLinked")
SEAT_EVENTS = {"SeatAssigned": True, "SeatReleased": False}
ADMIN_EVENTS = {"WorkspaceAdminGranted": True, "WorkspaceAdminRevoked": False}
MEMBERSHIP_EVENTS = ("TeamMemberAdded", "TeamMemberRemoved")
UP_TO = "position <= $3"
LATEST = 2**63 - 1  # an ``up_to`` bound past every position: the whole log


def decode(row: Row) -> Any:
    """The domain event of a log row, decoded from ``state`` by the app's mapper (personal fields opened
    with the key selected with the row: ``entries.decode``)."""
    return entries.decode(row)


# --- a time as a log position ----------------------------------------------------------------------------
async def position_at(conn: Conn, at: datetime) -> int:
    """The last log position recorded at or before ``at`` (0: none): a binary search over the primary key
    (``recorded_at`` never decreases in position order), a few index probes in one round trip."""
    value = await conn.fetchval(
        """
        WITH RECURSIVE search (lo, hi) AS (
            SELECT 0::bigint, coalesce((SELECT max(position) FROM events), 0)
            UNION ALL
            SELECT CASE WHEN probe.at <= $1 THEN probe.mid ELSE s.lo END,
                   CASE WHEN probe.at <= $1 THEN s.hi ELSE probe.mid - 1 END
              FROM search s
             CROSS JOIN LATERAL (
                   SELECT m.mid, (SELECT e.recorded_at FROM events e WHERE e.position >= m.mid
                                   ORDER BY e.position LIMIT 1) AS at
                     FROM (SELECT (s.lo + s.hi + 1) / 2 AS mid) m) probe
             WHERE s.lo < s.hi
        )
        SELECT min(hi) FROM search
        """,
        at,
    )
    return int(value)


# --- existence --------------------------------------------------------------------------------------------
async def created_as(conn: Conn, workspace_id: UUID, stream_id: UUID) -> str | None:
    """The type of the event that opened ``stream_id`` in this workspace (None: no such stream here)."""
    value = await conn.fetchval(
        "SELECT event_type FROM events WHERE stream_id = $1 AND stream_version = 1 AND workspace_id = $2",
        stream_id,
        workspace_id,
    )
    return str(value) if value is not None else None


async def is_member(conn: Conn, workspace_id: UUID, member_id: UUID) -> bool:
    return await created_as(conn, workspace_id, member_id) in MEMBER_CREATED


async def is_team(conn: Conn, workspace_id: UUID, team_id: UUID) -> bool:
    return await created_as(conn, workspace_id, team_id) == "TeamCreated"


# --- loading ----------------------------------------------------------------------------------------------
async def member_rows(conn: Conn, workspace_id: UUID, member_id: UUID, up_to: int) -> list[Row]:
    """The member's own stream and every event of the workspace that names it (seats, admin, teams), up to
    ``up_to``, in log order."""
    return list(
        await conn.fetch(
            f"""
            SELECT {entries.COLUMNS} FROM events
             WHERE workspace_id = $1 AND stream_id = $2 AND {UP_TO}
            UNION ALL
            SELECT {entries.COLUMNS} FROM events
             WHERE workspace_id = $1 AND (data->>'member_id') = $4 AND stream_id <> $2 AND {UP_TO}
             ORDER BY position
            """,
            workspace_id,
            member_id,
            up_to,
            str(member_id),
        )
    )


async def stream_rows(
    conn: Conn, workspace_id: UUID, stream_ids: Iterable[UUID], up_to: int
) -> dict[UUID, list[Row]]:
    """The events of each of ``stream_ids`` up to ``up_to``, by stream, in version order."""
    rows = await conn.fetch(
        f"""
        SELECT {entries.COLUMNS} FROM events
         WHERE stream_id = ANY($2::uuid[]) AND workspace_id = $1 AND {UP_TO}
         ORDER BY stream_id, stream_version
        """,
        workspace_id,
        list(stream_ids),
        up_to,
    )
    out: dict[UUID, list[Row]] = {}
    for row in rows:
        out.setdefault(row["stream_id"], []).append(row)
    return out


async def teams_at(conn: Conn, workspace_id: UUID, team_ids: Iterable[UUID], up_to: int) -> dict[UUID, Team]:
    """Each team as it was at ``up_to`` (teams that did not exist yet are left out)."""
    found = await stream_rows(conn, workspace_id, team_ids, up_to)
    teams = {stream: replay(decode(r) for r in rows) for stream, rows in found.items()}
    return {stream: team for stream, team in teams.items() if isinstance(team, Team)}


async def user_names_at(
    conn: Conn, workspace_id: UUID, member_ids: Sequence[UUID], up_to: int
) -> dict[UUID, str]:
    """Each member's userName at ``up_to``: from the latest event of its stream that records one."""
    rows = await conn.fetch(
        f"""
        SELECT DISTINCT ON (stream_id) stream_id, stream_version, event_type, state,
               scimledger_personal_key(data) AS {entries.KEY_COLUMN} FROM events
         WHERE stream_id = ANY($2::uuid[]) AND workspace_id = $1 AND {UP_TO}
           AND event_type = ANY($4::text[])
         ORDER BY stream_id, stream_version DESC
        """,
        workspace_id,
        list(member_ids),
        up_to,
        [*MEMBER_CREATED, "MemberAttributesChanged"],
    )
    return {row["stream_id"]: str(decode(row).user_name) for row in rows}


# --- a member, event by event -----------------------------------------------------------------------------
FIELDS = (
    "user_name",
    "display_name",
    "status",
    "role",
    "managed_by",
    "has_seat",
    "admin",
    "teams",
    "profile",
)


class MemberFold:
    """A member's state after each event of ``member_rows``, and which event last set each field.

    ``set_by`` maps a field to the row that last changed it; a field the member was created with is set by
    its creation event. ``team_set_by`` maps each team the member is in to the event that added them."""

    def __init__(self, member_id: UUID) -> None:
        self.member_id = member_id
        self.member: Member | None = None
        self.has_seat = False
        self.admin = False
        self.memberships: dict[UUID, Membership] = {}
        self.set_by: dict[str, Row] = {}
        self.team_set_by: dict[str, Row] = {}
        self.created: datetime | None = None
        self.last_modified: datetime | None = None

    @property
    def team_ids(self) -> list[str]:
        return sorted(m.team_id for m in self.memberships.values() if m.present)

    def values(self) -> dict[str, Any]:
        member = self.member
        return {
            "user_name": member.user_name if member else None,
            "display_name": member.profile.get("displayName") if member else None,
            "status": member.status if member else None,
            "role": member.role if member else None,
            "managed_by": member.managed_by if member else None,
            "has_seat": self.has_seat,
            "admin": self.admin,
            "teams": self.team_ids,
            "profile": member.profile if member else None,
        }

    def apply(self, row: Row) -> bool:
        """Fold one row; False (and nothing changes) when its decoded event does not concern the member."""
        event, kind = decode(row), row["event_type"]
        before = self.values()
        if row["stream_id"] == self.member_id:
            self.member = replay([event], self.member)
            if self.created is None:
                self.created = event.timestamp
            if kind in scim_users.event_types:
                self.last_modified = event.timestamp
        elif str(getattr(event, "member_id", "")) != str(self.member_id):
            return False
        elif kind in SEAT_EVENTS:
            self.has_seat = SEAT_EVENTS[kind]
        elif kind in ADMIN_EVENTS:
            self.admin = ADMIN_EVENTS[kind]
        elif kind in MEMBERSHIP_EVENTS:
            stream = row["stream_id"]
            membership = replay([event], self.memberships.get(stream))
            self.memberships[stream] = membership
            if membership.present:
                self.team_set_by[membership.team_id] = row
        else:
            return False
        after = self.values()
        for name in FIELDS:
            if after[name] != before[name] or (name not in self.set_by and self.member is not None):
                self.set_by[name] = row
        return True


async def fold_member(conn: Conn, workspace_id: UUID, member_id: UUID, up_to: int) -> MemberFold:
    """The member at ``up_to`` (``fold.member`` is None when it did not exist yet)."""
    fold = MemberFold(member_id)
    for row in await member_rows(conn, workspace_id, member_id, up_to):
        fold.apply(row)
    return fold


# --- a team, event by event -------------------------------------------------------------------------------
@dataclass
class TeamFold:
    """A team's state after each event: the Team aggregate (replayed) and its members.

    A TeamMemberAdded always takes a member from absent to present and a TeamMemberRemoved from present to
    absent (``Membership.add`` records nothing for a present member, ``remove`` nothing for an absent one),
    so the member count follows the events without replaying every membership of a large team. The member
    ids are kept while the team is small enough to list them (``ids`` is None otherwise)."""

    team_id: UUID
    team: Team | None
    count: int
    ids: set[str] | None

    def apply(self, row: Row) -> bool:
        event, kind = decode(row), row["event_type"]
        if row["stream_id"] == self.team_id:
            self.team = replay([event], self.team)
            return True
        if kind not in MEMBERSHIP_EVENTS or str(getattr(event, "team_id", "")) != str(self.team_id):
            return False
        joined = kind == "TeamMemberAdded"
        self.count += 1 if joined else -1
        if self.ids is not None:
            (self.ids.add if joined else self.ids.discard)(str(event.member_id))
        return True


async def present_memberships(
    conn: Conn,
    workspace_id: UUID,
    team_id: UUID,
    up_to: int,
    *,
    after_position: int = 0,
    limit: int | None = None,
) -> list[Row]:
    """The TeamMemberAdded rows of the team's members after log position ``up_to``: each membership
    stream's last event up to there, when it is an add. In the order they joined (log order), after
    ``after_position``: an index range scan, so a page costs the same in a team of 100,000."""
    return list(
        await conn.fetch(
            f"""
            SELECT {entries.COLUMNS} FROM events e
             WHERE e.workspace_id = $1 AND (e.data->>'team_id') = $2 AND e.position > $4
               AND e.position <= $3 AND e.event_type = 'TeamMemberAdded'
               AND NOT EXISTS (
                   SELECT 1 FROM events later
                    WHERE later.stream_id = e.stream_id AND later.stream_version > e.stream_version
                      AND later.position <= $3)
             ORDER BY e.position
             LIMIT $5
            """,
            workspace_id,
            str(team_id),
            up_to,
            after_position,
            limit,
        )
    )


async def member_count_at(conn: Conn, workspace_id: UUID, team_id: UUID, up_to: int) -> int:
    """How many members the team had after log position ``up_to``: its adds minus its removals (each add
    takes a member from absent to present, each removal back; see ``TeamFold``)."""
    value = await conn.fetchval(
        """
        SELECT count(*) FILTER (WHERE event_type = 'TeamMemberAdded')
               - count(*) FILTER (WHERE event_type = 'TeamMemberRemoved')
          FROM events
         WHERE workspace_id = $1 AND (data->>'team_id') = $2 AND position <= $3
        """,
        workspace_id,
        str(team_id),
        up_to,
    )
    return int(value)


async def team_rows(
    conn: Conn, workspace_id: UUID, team_id: UUID, *, after_position: int, limit: int
) -> list[Row]:
    """The team's stream and its membership events, in log order, after ``after_position``."""
    return list(
        await conn.fetch(
            f"""
            (SELECT {entries.COLUMNS} FROM events
              WHERE stream_id = $2 AND workspace_id = $1 AND position > $4 ORDER BY position LIMIT $5)
            UNION ALL
            (SELECT {entries.COLUMNS} FROM events
              WHERE workspace_id = $1 AND (data->>'team_id') = $3 AND position > $4
                AND stream_id <> $2 ORDER BY position LIMIT $5)
             ORDER BY position LIMIT $5
            """,
            workspace_id,
            team_id,
            str(team_id),
            after_position,
            limit,
        )
    )


async def fold_team(conn: Conn, workspace_id: UUID, team_id: UUID, up_to: int, list_up_to: int) -> TeamFold:
    """The team after log position ``up_to``; its member ids are kept when it has at most ``list_up_to``
    members."""
    team_events = (await stream_rows(conn, workspace_id, [team_id], up_to)).get(team_id, [])
    team = replay(decode(r) for r in team_events)
    count = await member_count_at(conn, workspace_id, team_id, up_to) if up_to > 0 else 0
    ids: set[str] | None = None
    if count <= list_up_to:
        rows = await present_memberships(conn, workspace_id, team_id, up_to)
        ids = {m.member_id for m in memberships(rows, team_id).values()}
    return TeamFold(team_id, team, count, ids)


def memberships(rows: Iterable[Row], team_id: UUID) -> dict[int, Membership]:
    """The Membership each TeamMemberAdded row opens (by position), for rows whose decoded event is of
    ``team_id``."""
    out: dict[int, Membership] = {}
    for row in rows:
        membership = replay([decode(row)])
        if isinstance(membership, Membership) and membership.team_id == str(team_id):
            out[row["position"]] = membership
    return out
