"""Read queries behind the admin API (``/api/v1``): plain data from the projection tables."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg

from scimledger.domain.workspace import challenge_record

Conn: TypeAlias = asyncpg.Pool | asyncpg.Connection


@dataclass(frozen=True)
class AdminPrincipal:
    workspace_id: UUID
    key_id: UUID


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


async def admin_principal(conn: Conn, secret_hash: bytes) -> AdminPrincipal | None:
    row = await conn.fetchrow(
        "SELECT id, workspace_id FROM admin_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        secret_hash,
    )
    return AdminPrincipal(row["workspace_id"], row["id"]) if row else None


async def workspace(conn: Conn, workspace_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        """SELECT id, name, automatic_seat_assignment, seats_total, seats_assigned
             FROM workspaces WHERE id = $1""",
        workspace_id,
    )
    if row is None:
        return None
    domains = await conn.fetch(
        "SELECT domain, verified, challenge FROM workspace_domains WHERE workspace_id = $1 ORDER BY domain",
        workspace_id,
    )
    return {
        "id": str(row["id"]),
        "name": row["name"],
        "settings": {"automatic_seat_assignment": row["automatic_seat_assignment"]},
        "seats": {
            "total": row["seats_total"],
            "assigned": row["seats_assigned"],
            "available": row["seats_total"] - row["seats_assigned"],
        },
        "domains": [_domain(d) for d in domains],
    }


def challenge(record: str, token: str) -> dict[str, str]:
    """README "Verifying a domain": publish ``value`` as a TXT record named ``record``."""
    return {"record": record, "type": "TXT", "value": token}


def _domain(row: asyncpg.Record) -> dict[str, Any]:
    """A domain; an unverified one with its challenge (issue 8), when it has one."""
    out: dict[str, Any] = {"domain": row["domain"], "verified": row["verified"]}
    if not row["verified"] and row["challenge"] is not None:
        out["challenge"] = challenge(challenge_record(row["domain"]), row["challenge"])
    return out


async def tokens(conn: Conn, workspace_id: UUID) -> list[dict[str, Any]]:
    """Seed 004: status, who created it and when, last use, who revoked it and when."""
    rows = await conn.fetch(
        """SELECT t.id, t.name, t.description, t.scopes, t.created_at, t.created_by, t.revoked_at,
                  t.revoked_by, u.last_used_at
             FROM tokens t LEFT JOIN token_usage u ON u.token_id = t.id
            WHERE t.workspace_id = $1 ORDER BY t.created_at, t.id""",
        workspace_id,
    )
    return [
        {
            "id": str(r["id"]),
            "name": r["name"],
            "description": r["description"],
            "scopes": list(r["scopes"]),
            "status": "revoked" if r["revoked_at"] else "active",
            "created_by": r["created_by"],
            "created_at": _iso(r["created_at"]),
            "last_used_at": _iso(r["last_used_at"]),
            "revoked_by": r["revoked_by"],
            "revoked_at": _iso(r["revoked_at"]),
        }
        for r in rows
    ]


def _member(row: asyncpg.Record, teams: list[dict[str, Any]] | None = None) -> dict[str, Any]:
    out = {
        "id": str(row["id"]),
        "user_name": row["user_name"],
        "display_name": row["display_name"],
        "status": row["status"],
        "role": row["role"],
        "managed_by": row["managed_by"],
        "has_seat": row["has_seat"],
        "created": _iso(row["created"]),
        "last_modified": _iso(row["last_modified"]),
    }
    if teams is not None:
        out["teams"] = teams
    return out


MEMBER_COLUMNS = "id, user_name, display_name, status, role, managed_by, has_seat, created, last_modified"


async def members(
    conn: Conn, workspace_id: UUID, *, status: str | None, role: str | None, managed_by: str | None
) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        f"""SELECT {MEMBER_COLUMNS} FROM scim_users
             WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR role = $3) AND ($4::text IS NULL OR managed_by = $4)
             ORDER BY created, id""",
        workspace_id,
        status,
        role,
        managed_by,
    )
    return [_member(r) for r in rows]


async def member(conn: Conn, workspace_id: UUID, member_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"SELECT {MEMBER_COLUMNS} FROM scim_users WHERE workspace_id = $1 AND id = $2",
        workspace_id,
        member_id,
    )
    if row is None:
        return None
    teams = await conn.fetch(
        """SELECT g.id, g.display_name FROM scim_group_members m JOIN scim_groups g ON g.id = m.group_id
            WHERE m.member_id = $1 AND NOT g.archived ORDER BY g.display_name""",
        member_id,
    )
    return _member(row, [{"id": str(t["id"]), "name": t["display_name"]} for t in teams])


async def teams(conn: Conn, workspace_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT g.id, g.display_name, g.external_id, g.managed_by, g.archived, g.created,
                  (SELECT count(*) FROM scim_group_members m WHERE m.group_id = g.id) AS members
             FROM scim_groups g WHERE g.workspace_id = $1 ORDER BY g.created, g.id""",
        workspace_id,
    )
    return [
        {
            "id": str(r["id"]),
            "name": r["display_name"],
            "external_id": r["external_id"],
            "managed_by": r["managed_by"],
            "archived": r["archived"],
            "members": r["members"],
            "created": _iso(r["created"]),
        }
        for r in rows
    ]


async def drift(conn: Conn, workspace_id: UUID) -> list[dict[str, Any]]:
    rows = await conn.fetch(
        """SELECT resource_type, resource_id, event_type, actor, change, at FROM drift
            WHERE workspace_id = $1 ORDER BY at, stream_id, stream_version""",
        workspace_id,
    )
    return [
        {
            "resource_type": r["resource_type"],
            "resource_id": str(r["resource_id"]),
            "event_type": r["event_type"],
            "actor": r["actor"],
            "change": r["change"],
            "at": _iso(r["at"]),
        }
        for r in rows
    ]


async def outbox(conn: Conn, workspace_id: UUID) -> list[dict[str, Any]]:
    """The workspace's notifications. The welcome to a person new to the product is the product's message,
    not the workspace's: it is not listed, or the listing would tell whether the person is known in another
    workspace (issue 8, defect 1)."""
    rows = await conn.fetch(
        """SELECT o.position, o.kind, o.member_id, o.recipient, o.payload, o.created_at, d.sent_at
             FROM outbox o LEFT JOIN outbox_delivery d ON d.position = o.position AND d.kind = o.kind
            WHERE o.workspace_id = $1 AND o.kind <> 'welcome' ORDER BY o.position, o.kind""",
        workspace_id,
    )
    return [
        {
            "position": r["position"],
            "kind": r["kind"],
            "member_id": str(r["member_id"]) if r["member_id"] else None,
            "recipient": r["recipient"],
            "payload": r["payload"],
            "created_at": _iso(r["created_at"]),
            "sent_at": _iso(r["sent_at"]),
        }
        for r in rows
    ]
