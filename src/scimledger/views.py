"""Read queries over the projection tables. They return plain data, never aggregates."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

import asyncpg
import orjson

from scimledger.domain import Member

USER_COLUMNS = "id, user_name, active, status, role, managed_by, resource, created, last_modified, version"


@dataclass(frozen=True)
class UserRow:
    id: UUID
    user_name: str
    active: bool
    status: str
    role: str
    managed_by: str
    resource: dict[str, Any]
    created: datetime
    last_modified: datetime
    version: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> UserRow:
        return cls(**dict(row))

    @classmethod
    def of_row(cls, row: asyncpg.Record) -> UserRow:
        """From a row that has more columns than a UserRow (a listing's total, groups)."""
        return cls(**{name: row[name] for name in cls.__dataclass_fields__})

    @classmethod
    def of_member(cls, member: Member) -> UserRow:
        """The row the scim_users projection writes for ``member`` (a just-saved aggregate)."""
        return cls(
            id=member.id,
            user_name=member.user_name,
            active=member.status in ("active", "invited"),
            status=member.status,
            role=member.role,
            managed_by=member.managed_by,
            resource=member.profile,
            created=member.created_on,
            last_modified=member.modified_on,
            version=member.version,
        )


@dataclass(frozen=True)
class Principal:
    """Who is calling the SCIM API: a token of one workspace."""

    workspace_id: UUID
    token_id: UUID
    token_name: str
    scopes: tuple[str, ...]


async def touch_token(conn: asyncpg.Pool | asyncpg.Connection, token_id: UUID) -> None:
    """Seed 004 "last used": kept outside the log, written at most once a minute per token."""
    await conn.execute(
        """INSERT INTO token_usage (token_id, last_used_at) VALUES ($1, now())
           ON CONFLICT (token_id) DO UPDATE SET last_used_at = EXCLUDED.last_used_at
            WHERE token_usage.last_used_at < now() - interval '1 minute'""",
        token_id,
    )


async def get_user(
    conn: asyncpg.Pool | asyncpg.Connection, workspace_id: UUID, user_id: UUID
) -> tuple[UserRow, list[dict[str, Any]]] | None:
    """A visible user of the workspace with its groups (RFC 7643 §4.1.2), in one round trip."""
    row = await conn.fetchrow(
        f"""SELECT {USER_COLUMNS}, {GROUPS_OF_USER} AS groups FROM scim_users u
             WHERE id = $1 AND workspace_id = $2 AND status <> 'deprovisioned'""",
        user_id,
        workspace_id,
    )
    if row is None:
        return None
    return UserRow.of_row(row), [{**g, "value": str(g["value"])} for g in row["groups"]]


# The lateral join looks each group up by its primary key (a plain join let the planner hash all groups).
GROUPS_OF_USER = """(SELECT coalesce(json_agg(json_build_object('value', g.id, 'display', g.display_name,
                                                  'type', 'direct') ORDER BY g.display_name, g.id), '[]')
                      FROM scim_group_members m,
                           LATERAL (SELECT gg.id, gg.display_name FROM scim_groups gg
                                     WHERE gg.id = m.group_id AND NOT gg.archived OFFSET 0) g
                     WHERE m.member_id = u.id)"""


async def find_users(
    conn: asyncpg.Pool | asyncpg.Connection,
    where: str,
    args: list[object],
    *,
    order_by: str,
    limit: int,
    offset: int,
    with_groups: bool,
) -> tuple[int, list[UserRow], dict[UUID, list[dict[str, Any]]]]:
    """Users of a workspace matching a compiled filter ``where`` (``args[0]``, $1, is the workspace id): the
    total, one page, and (``with_groups``) each user's groups — one round trip for a non-empty page."""
    base = f"FROM scim_users u WHERE u.workspace_id = $1 AND u.status <> 'deprovisioned' AND ({where})"
    if limit == 0:
        return int(await conn.fetchval(f"SELECT count(*) {base}", *args)), [], {}
    n = len(args)
    groups = GROUPS_OF_USER if with_groups else "'[]'::json"
    rows = await conn.fetch(
        f"SELECT {', '.join('u.' + c.strip() for c in USER_COLUMNS.split(','))}, "
        f"count(*) OVER () AS total, {groups} AS groups {base} "
        f"ORDER BY {order_by} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    if not rows:
        total = int(await conn.fetchval(f"SELECT count(*) {base}", *args)) if offset else 0
        return total, [], {}
    users = [UserRow.of_row(r) for r in rows]
    by_id = {r["id"]: [{**g, "value": str(g["value"])} for g in r["groups"]] for r in rows}
    return int(rows[0]["total"]), users, by_id


async def teams_of_member(conn: asyncpg.Pool | asyncpg.Connection, member_id: UUID) -> list[UUID]:
    rows = await conn.fetch("SELECT group_id FROM scim_group_members WHERE member_id = $1", member_id)
    return [r[0] for r in rows]


async def members_of_team(conn: asyncpg.Pool | asyncpg.Connection, team_id: UUID) -> list[UUID]:
    rows = await conn.fetch("SELECT member_id FROM scim_group_members WHERE group_id = $1", team_id)
    return [r[0] for r in rows]


async def existing_members(
    conn: asyncpg.Pool | asyncpg.Connection, workspace_id: UUID, ids: list[UUID]
) -> set[UUID]:
    """Which of ``ids`` are visible members of the workspace."""
    rows = await conn.fetch(
        """SELECT id FROM scim_users
            WHERE workspace_id = $1 AND id = ANY($2::uuid[]) AND status <> 'deprovisioned'""",
        workspace_id,
        ids,
    )
    return {r[0] for r in rows}


GROUP_COLUMNS = "id, display_name, external_id, managed_by, created, last_modified, version"


@dataclass(frozen=True)
class GroupRow:
    id: UUID
    display_name: str
    external_id: str | None
    managed_by: str
    created: datetime
    last_modified: datetime
    version: int

    @classmethod
    def of(cls, row: asyncpg.Record) -> GroupRow:
        return cls(**dict(row))


async def get_group(
    conn: asyncpg.Pool | asyncpg.Connection, workspace_id: UUID, group_id: UUID
) -> GroupRow | None:
    row = await conn.fetchrow(
        f"SELECT {GROUP_COLUMNS} FROM scim_groups WHERE id = $1 AND workspace_id = $2 AND NOT archived",
        group_id,
        workspace_id,
    )
    return GroupRow.of(row) if row else None


async def group_version(conn: asyncpg.Pool | asyncpg.Connection, group_id: UUID) -> int | None:
    """The group's version as its ETag shows it (RFC 7644 §3.14): it moves with its members too
    (``projections/scim_groups.py``), so ``If-Match`` is checked against it, not the Team stream's."""
    value = await conn.fetchval("SELECT version FROM scim_groups WHERE id = $1", group_id)
    return None if value is None else int(value)


async def members_for_groups(
    conn: asyncpg.Pool | asyncpg.Connection, group_ids: list[UUID]
) -> dict[UUID, list[dict[str, Any]]]:
    """RFC 7643 §4.2 ``members`` of each group: value, display (as the IdP set it, else the user's
    displayName, else userName)."""
    rows = await conn.fetch(
        """SELECT m.group_id, u.id, coalesce(m.display, u.display_name, u.user_name) AS display
             FROM scim_group_members m JOIN scim_users u ON u.id = m.member_id
            WHERE m.group_id = ANY($1::uuid[]) ORDER BY m.group_id, m.added, u.id""",
        group_ids,
    )
    out: dict[UUID, list[dict[str, Any]]] = {}
    for row in rows:
        out.setdefault(row["group_id"], []).append({"value": str(row["id"]), "display": row["display"]})
    return out


# RFC 7643 §4.2 ``members`` of one group as the JSON text of the array a response carries, built by
# PostgreSQL in one pass (issue 9, "Big teams"): the same members, order and fields as ``members_for_groups``
# plus ``scim_groups.render``, byte for byte as orjson writes them (``to_json`` escapes a string exactly as
# orjson does). $3 is the JSON-escaped ``$ref`` prefix without its closing quote; $4 is [the group id]: with
# ``= ANY`` PostgreSQL keeps planning the prepared statement for each team (an index walk for a small one, a
# hash join for a big one), where ``= $1`` soon got a generic plan that hash-joins every user for 100 members.
MEMBERS_JSON = """(SELECT '[' || string_agg('{"value":"' || u.id::text || '","display":'
                                  || to_json(coalesce(m.display, u.display_name, u.user_name))::text
                                  || ',"$ref":' || $3::text || u.id::text || '","type":"User"}',
                                  ',' ORDER BY m.added, u.id) || ']'
                     FROM scim_group_members m JOIN scim_users u ON u.id = m.member_id
                    WHERE m.group_id = ANY($4::uuid[]))"""


async def get_group_with_members_json(
    conn: asyncpg.Pool | asyncpg.Connection, workspace_id: UUID, group_id: UUID, ref_prefix: str
) -> tuple[GroupRow, str | None] | None:
    """A visible group and its rendered ``members`` array (None when it has none), in one round trip.
    ``ref_prefix`` is the URL each member's ``$ref`` starts with (``<base>/Users/``)."""
    row = await conn.fetchrow(
        f"""SELECT {GROUP_COLUMNS}, {MEMBERS_JSON} AS members_json FROM scim_groups g
             WHERE id = $1 AND workspace_id = $2 AND NOT archived""",
        group_id,
        workspace_id,
        orjson.dumps(ref_prefix)[:-1].decode(),
        [group_id],
    )
    if row is None:
        return None
    return GroupRow(**{name: row[name] for name in GroupRow.__dataclass_fields__}), row["members_json"]


async def find_groups(
    conn: asyncpg.Pool | asyncpg.Connection,
    where: str,
    args: list[object],
    *,
    order_by: str,
    limit: int,
    offset: int,
) -> tuple[int, list[GroupRow]]:
    """Groups of a workspace matching a compiled filter ``where``; ``args[0]`` ($1) is the workspace id."""
    base = f"FROM scim_groups g WHERE g.workspace_id = $1 AND NOT g.archived AND ({where})"
    total = await conn.fetchval(f"SELECT count(*) {base}", *args)
    if limit == 0:
        return int(total), []
    n = len(args)
    rows = await conn.fetch(
        f"SELECT {', '.join('g.' + c.strip() for c in GROUP_COLUMNS.split(','))} {base} "
        f"ORDER BY {order_by} LIMIT ${n + 1} OFFSET ${n + 2}",
        *args,
        limit,
        offset,
    )
    return int(total), [GroupRow.of(r) for r in rows]


@dataclass(frozen=True)
class Holders:
    """Who holds a userName and an externalId in a workspace (README "Identity rule"), and whether the
    person was ever a member there: what a provisioning decides on, read in one round trip."""

    user_name: UUID | None
    external_id: UUID | None
    was_member: bool


async def holders(
    conn: asyncpg.Pool | asyncpg.Connection,
    workspace_id: UUID,
    user_name_key: str | None,
    external_id: str | None,
    person_id: UUID | None = None,
) -> Holders:
    """The visible members holding ``user_name_key`` and ``external_id`` (the unique indexes
    ``scim_users_user_name_unique`` / ``scim_users_external_id_unique`` enforce the same sets at commit)."""
    row = await conn.fetchrow(
        """SELECT (SELECT id FROM scim_users WHERE workspace_id = $1 AND user_name_key = $2
                     AND status <> 'deprovisioned'),
                  (SELECT id FROM scim_users WHERE workspace_id = $1 AND external_id = $3
                     AND status <> 'deprovisioned'),
                  $4::uuid IS NOT NULL
                  AND EXISTS (SELECT 1 FROM scim_users WHERE workspace_id = $1 AND person_id = $4)""",
        workspace_id,
        user_name_key,
        external_id,
        person_id,
    )
    return Holders(row[0], row[1], bool(row[2]))
