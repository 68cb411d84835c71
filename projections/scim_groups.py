"""Read model of SCIM Groups (teams) and their current members (inline projection)."""

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
    }
)


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
        return
    if kind == "TeamMemberRemoved":
        await conn.execute(
            "DELETE FROM scim_group_members WHERE group_id = $1 AND member_id = $2", e.team_id, e.member_id
        )
        return
    if kind == "TeamLinked":
        assignment, value = "managed_by = 'idp', external_id = $4", e.external_id
    elif kind == "TeamRenamed":
        assignment, value = "display_name = $4", e.display_name
    elif kind == "TeamExternalIdChanged":
        assignment, value = "external_id = $4", e.external_id
    elif kind == "TeamUnlinked":
        assignment, value = "managed_by = $4", "app"
    else:  # TeamArchived
        assignment, value = "archived = $4::text IS NOT NULL", "archived"
    await conn.execute(
        f"UPDATE scim_groups SET {assignment}, last_modified = $2, version = $3 WHERE id = $1",
        e.originator_id,
        e.timestamp,
        e.originator_version,
        value,
    )
