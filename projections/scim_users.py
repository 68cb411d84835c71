"""Read model of SCIM Users: one row per member of a workspace (inline projection).

``resource`` holds the member's SCIM attributes exactly as they are rendered (without id, meta, schemas and
groups); the columns beside it are what filters and look-ups need indexed (docs/architecture.md, "Queries").
"""

from __future__ import annotations

from typing import Any

import asyncpg

from projections.base import Envelope
from scimledger.domain.member import holds_seat
from scimledger.domain.names import user_name_key
from scimledger.domain.personal import is_erased

name = "scim_users"
tables = ("scim_users",)
CREATED = frozenset({"MemberProvisioned", "MemberInvited", "MemberLinked"})
STATUS = {
    "MemberSuspended": "suspended",
    "MemberReactivated": "active",
    "InviteAccepted": "active",
    "MemberDeprovisioned": "deprovisioned",
}
event_types = (
    CREATED
    | frozenset(STATUS)
    | frozenset({"MemberAttributesChanged", "MemberRoleChanged", "MemberManagementChanged"})
    | frozenset({"PersonalDataErased"})
)


def name_key(user_name: str) -> str | None:
    """The identity rule's key; none for an erased userName (issue 11: its rows are deleted on erasure, and
    a rebuild must not find two erased members holding one key meanwhile)."""
    return None if is_erased(user_name) else user_name_key(user_name)


def is_active(status: str) -> bool:
    """SCIM ``active``: the IdP's intent; an invited member is active once they accept."""
    return status in ("active", "invited")


def indexed_columns(profile: dict[str, Any]) -> tuple[str | None, str | None, list[str]]:
    """externalId, displayName and the lower-cased email values of a profile."""
    emails = profile.get("emails")
    values = [
        e["value"].lower()
        for e in (emails if isinstance(emails, list) else [])
        if isinstance(e, dict) and isinstance(e.get("value"), str)
    ]
    return profile.get("externalId"), profile.get("displayName"), values


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    e, kind = env.event, env.event_type
    if kind in CREATED:
        external_id, display_name, emails = indexed_columns(e.profile)
        await conn.execute(
            """INSERT INTO scim_users (id, workspace_id, person_id, user_name, external_id, display_name,
                                       active, status, role, managed_by, has_seat, email_values, resource,
                                       created, last_modified, version, user_name_key)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $14, $15, $16)""",
            e.originator_id,
            env.workspace_id,
            e.person_id,
            e.user_name,
            external_id,
            display_name,
            is_active(e.status),
            e.status,
            e.role,
            e.managed_by,
            holds_seat(e.status),
            emails,
            e.profile,
            e.timestamp,
            e.originator_version,
            name_key(e.user_name),
        )
    elif kind == "MemberAttributesChanged":
        external_id, display_name, emails = indexed_columns(e.profile)
        await conn.execute(
            """UPDATE scim_users SET user_name = $2, external_id = $3, display_name = $4, email_values = $5,
                      resource = $6, last_modified = $7, version = $8, user_name_key = $9 WHERE id = $1""",
            e.originator_id,
            e.user_name,
            external_id,
            display_name,
            emails,
            e.profile,
            e.timestamp,
            e.originator_version,
            name_key(e.user_name),
        )
    elif kind in STATUS:
        status = getattr(e, "status", None) or STATUS[kind]  # MemberReactivated names where it returns
        await conn.execute(
            """UPDATE scim_users SET status = $2, active = $3, has_seat = $4, last_modified = $5, version = $6
                WHERE id = $1""",
            e.originator_id,
            status,
            is_active(status),
            holds_seat(status),
            e.timestamp,
            e.originator_version,
        )
    elif kind == "MemberRoleChanged":
        await conn.execute(
            "UPDATE scim_users SET role = $2, last_modified = $3, version = $4 WHERE id = $1",
            e.originator_id,
            e.role,
            e.timestamp,
            e.originator_version,
        )
    elif kind == "PersonalDataErased":  # README "Erasure (crypto-shredding)": nothing of the member is left
        await conn.execute("DELETE FROM scim_users WHERE id = $1", e.originator_id)
    elif kind == "MemberManagementChanged":
        await conn.execute(
            "UPDATE scim_users SET managed_by = $2, last_modified = $3, version = $4 WHERE id = $1",
            e.originator_id,
            e.managed_by,
            e.timestamp,
            e.originator_version,
        )


async def backfill_user_name_keys(conn: asyncpg.Connection) -> None:
    """Rows written before the identity rule had a key column get their key (a read-model upgrade, run by
    ``migrate``; the log is untouched)."""
    rows = await conn.fetch("SELECT id, user_name FROM scim_users WHERE user_name_key IS NULL")
    if rows:
        await conn.executemany(
            "UPDATE scim_users SET user_name_key = $2 WHERE id = $1",
            [(r["id"], user_name_key(r["user_name"])) for r in rows],
        )
