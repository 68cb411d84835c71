"""Read model of SCIM Groups (teams) and their current members (inline projection).

A group's ``version`` and ``last_modified`` are the resource's (RFC 7644 §3.14: the version changes whenever
the resource does), not the Team stream's: its members live on streams of their own (one Membership per team
and member), so every event that changes what the group shows moves them: the team's own events, a member
added or removed (a deprovisioning removes its memberships too), and a member's new attributes when the
group shows that member's name (``members.display`` set by no IdP). ``version`` counts those events (the
team's creation is 1); ``last_modified`` is the latest of their times. One row update each, whatever the
team's size. ``If-Match`` is checked against this version (``views.group_version``).
"""

from __future__ import annotations

import asyncpg

from projections.base import Envelope

name = "scim_groups"
tables = ("scim_groups", "scim_group_members")
event_types = frozenset(
    {
        "TeamCreated",
        "TeamLinked",
        "TeamRenamed",
        "TeamExternalIdChanged",
        "TeamUnlinked",
        "TeamArchived",
        "TeamMemberAdded",
        "TeamMemberRemoved",
        "MemberAttributesChanged",
    }
)

# The group's version and lastModified move on (``$2`` is the event's time).
TOUCH = "version = version + 1, last_modified = greatest(last_modified, $2)"


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    e, kind = env.event, env.event_type
    if kind == "TeamCreated":
        await conn.execute(
            """INSERT INTO scim_groups (id, workspace_id, display_name, external_id, managed_by, resource,
                                        created, last_modified, version)
               VALUES ($1, $2, $3, $4, $5, '{}'::jsonb, $6, $6, $7)""",
            e.originator_id,
            env.workspace_id,
            e.display_name,
            e.external_id,
            e.managed_by,
            e.timestamp,
            e.originator_version,
        )
        return
    if kind == "TeamMemberAdded":
        await conn.execute(
            """INSERT INTO scim_group_members (group_id, member_id, workspace_id, added, display)
               VALUES ($1, $2, $3, $4, $5) ON CONFLICT DO NOTHING""",
            e.team_id,
            e.member_id,
            env.workspace_id,
            e.timestamp,
            e.display,
        )
        await conn.execute(f"UPDATE scim_groups SET {TOUCH} WHERE id = $1", e.team_id, e.timestamp)
        return
    if kind == "TeamMemberRemoved":
        await conn.execute(
            "DELETE FROM scim_group_members WHERE group_id = $1 AND member_id = $2", e.team_id, e.member_id
        )
        await conn.execute(f"UPDATE scim_groups SET {TOUCH} WHERE id = $1", e.team_id, e.timestamp)
        return
    if kind == "MemberAttributesChanged":  # its displayName or userName may be what its teams show
        await conn.execute(
            f"""UPDATE scim_groups g SET {TOUCH} FROM scim_group_members m
                 WHERE m.member_id = $1 AND m.display IS NULL AND g.id = m.group_id""",
            e.originator_id,
            e.timestamp,
        )
        return
    if kind == "TeamLinked":
        assignment, value = "managed_by = 'idp', external_id = $3", e.external_id
    elif kind == "TeamRenamed":
        assignment, value = "display_name = $3", e.display_name
    elif kind == "TeamExternalIdChanged":
        assignment, value = "external_id = $3", e.external_id
    elif kind == "TeamUnlinked":
        assignment, value = "managed_by = $3", "app"
    else:  # TeamArchived
        assignment, value = "archived = $3::text IS NOT NULL", "archived"
    await conn.execute(
        f"UPDATE scim_groups SET {assignment}, {TOUCH} WHERE id = $1", e.originator_id, e.timestamp, value
    )
