"""Read queries behind the admin API (``/api/v1``): plain data from the projection tables.

Lists are read a page at a time in a fixed order with a keyset (README "Admin API", "Lists"): a page starts
strictly after the keyset of the last item of the previous page, so items added meanwhile are neither
repeated nor skipped, and each page is an index walk however long the list.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
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


@dataclass(frozen=True)
class Page:
    """One page of a list: its items, and ``last``, the keyset of its last item when more follow (else
    None: the last page)."""

    items: list[dict[str, Any]]
    last: tuple[Any, ...] | None

    def __iter__(self) -> Iterator[dict[str, Any]]:
        return iter(self.items)

    def __len__(self) -> int:
        return len(self.items)


def _after(columns: str, after: tuple[Any, ...] | None, first: int) -> tuple[str, list[Any]]:
    """The condition "after ``after`` in the order of ``columns``", its parameters numbered from ``first``."""
    if after is None:
        return "true", []
    placeholders = ", ".join(f"${first + i}" for i in range(len(after)))
    return f"({columns}) > ({placeholders})", list(after)


def _page(
    rows: list[asyncpg.Record],
    limit: int,
    render: Callable[[asyncpg.Record], dict[str, Any]],
    keyset: Callable[[asyncpg.Record], tuple[Any, ...]],
) -> Page:
    """``rows`` fetched with ``LIMIT limit + 1``: the page, and whether (and after what) more follow."""
    shown = rows[:limit]
    return Page([render(r) for r in shown], keyset(shown[-1]) if len(rows) > limit else None)


async def admin_principal(conn: Conn, secret_hash: bytes) -> AdminPrincipal | None:
    row = await conn.fetchrow(
        "SELECT id, workspace_id FROM admin_keys WHERE secret_hash = $1 AND revoked_at IS NULL",
        secret_hash,
    )
    return AdminPrincipal(row["workspace_id"], row["id"]) if row else None


@dataclass(frozen=True)
class AdminKeyRow:
    """An admin key as listed: never its secret nor its hash. Who created and revoked it is the actor the
    log recorded with its ``AdminKeyIssued`` and ``AdminKeyRevoked``."""

    id: UUID
    created_at: datetime
    created_by: str | None
    revoked_at: datetime | None
    revoked_by: str | None

    @property
    def status(self) -> str:
        return "revoked" if self.revoked_at is not None else "active"

    def as_dict(self) -> dict[str, Any]:
        return {
            "id": str(self.id),
            "status": self.status,
            "created_at": _iso(self.created_at),
            "created_by": self.created_by,
            "revoked_at": _iso(self.revoked_at),
            "revoked_by": self.revoked_by,
        }


def _actor(event_type: str) -> str:
    """The name of the actor of the key's ``event_type`` event (the log's metadata)."""
    return f"""(SELECT e.metadata->'actor'->>'name' FROM events e
                 WHERE e.stream_id = k.id AND e.event_type = '{event_type}'
                 ORDER BY e.stream_version DESC LIMIT 1)"""


async def list_admin_keys(conn: Conn, workspace_id: UUID) -> list[AdminKeyRow]:
    """The workspace's admin keys, active and revoked, by creation (README "Admin API", "Admin keys")."""
    rows = await conn.fetch(
        f"""SELECT k.id, k.created_at, k.revoked_at, {_actor("AdminKeyIssued")} AS created_by,
                   {_actor("AdminKeyRevoked")} AS revoked_by
              FROM admin_keys k WHERE k.workspace_id = $1 ORDER BY k.created_at, k.id""",
        workspace_id,
    )
    return [AdminKeyRow(**dict(r)) for r in rows]


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


def _token(r: asyncpg.Record) -> dict[str, Any]:
    return {
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


TOKEN_COLUMNS = """t.id, t.name, t.description, t.scopes, t.created_at, t.created_by, t.revoked_at,
                   t.revoked_by, u.last_used_at"""


async def tokens(
    conn: Conn, workspace_id: UUID, *, after: tuple[Any, ...] | None = None, limit: int = 1000
) -> Page:
    """Seed 004: status, who created it and when, last use, who revoked it and when; by creation."""
    condition, args = _after("t.created_at, t.id", after, 3)
    rows = await conn.fetch(
        f"""SELECT {TOKEN_COLUMNS} FROM tokens t LEFT JOIN token_usage u ON u.token_id = t.id
             WHERE t.workspace_id = $1 AND {condition} ORDER BY t.created_at, t.id LIMIT $2""",
        workspace_id,
        limit + 1,
        *args,
    )
    return _page(rows, limit, _token, lambda r: (r["created_at"], r["id"]))


async def token(conn: Conn, workspace_id: UUID, token_id: UUID) -> dict[str, Any] | None:
    row = await conn.fetchrow(
        f"""SELECT {TOKEN_COLUMNS} FROM tokens t LEFT JOIN token_usage u ON u.token_id = t.id
             WHERE t.workspace_id = $1 AND t.id = $2""",
        workspace_id,
        token_id,
    )
    return _token(row) if row is not None else None


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
    conn: Conn,
    workspace_id: UUID,
    *,
    status: str | None,
    role: str | None,
    managed_by: str | None,
    after: tuple[Any, ...] | None = None,
    limit: int = 1000,
) -> Page:
    """The members (deprovisioned ones too) matching every filter given, by creation."""
    condition, args = _after("created, id", after, 6)
    rows = await conn.fetch(
        f"""SELECT {MEMBER_COLUMNS} FROM scim_users
             WHERE workspace_id = $1 AND ($2::text IS NULL OR status = $2)
               AND ($3::text IS NULL OR role = $3) AND ($4::text IS NULL OR managed_by = $4)
               AND {condition}
             ORDER BY created, id LIMIT $5""",
        workspace_id,
        status,
        role,
        managed_by,
        limit + 1,
        *args,
    )
    return _page(rows, limit, _member, lambda r: (r["created"], r["id"]))


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


TEAM_COLUMNS = """g.id, g.display_name, g.external_id, g.managed_by, g.archived, g.created,
                  (SELECT count(*) FROM scim_group_members m WHERE m.group_id = g.id) AS members"""


def _team(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "id": str(r["id"]),
        "name": r["display_name"],
        "external_id": r["external_id"],
        "managed_by": r["managed_by"],
        "archived": r["archived"],
        "members": r["members"],
        "created": _iso(r["created"]),
    }


async def teams(
    conn: Conn, workspace_id: UUID, *, after: tuple[Any, ...] | None = None, limit: int = 1000
) -> Page:
    """The teams (archived ones too), by creation."""
    condition, args = _after("g.created, g.id", after, 3)
    rows = await conn.fetch(
        f"""SELECT {TEAM_COLUMNS} FROM scim_groups g WHERE g.workspace_id = $1 AND {condition}
             ORDER BY g.created, g.id LIMIT $2""",
        workspace_id,
        limit + 1,
        *args,
    )
    return _page(rows, limit, _team, lambda r: (r["created"], r["id"]))


async def team(conn: Conn, workspace_id: UUID, team_id: UUID) -> dict[str, Any] | None:
    """One team of the workspace (archived too), as listed."""
    row = await conn.fetchrow(
        f"SELECT {TEAM_COLUMNS} FROM scim_groups g WHERE g.workspace_id = $1 AND g.id = $2",
        workspace_id,
        team_id,
    )
    return _team(row) if row is not None else None


def _drift(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "resource_type": r["resource_type"],
        "resource_id": str(r["resource_id"]),
        "event_type": r["event_type"],
        "actor": r["actor"],
        "change": r["change"],
        "at": _iso(r["at"]),
    }


async def drift(
    conn: Conn, workspace_id: UUID, *, after: tuple[Any, ...] | None = None, limit: int = 1000
) -> Page:
    """Admin changes the IdP has not reconciled yet, oldest first."""
    condition, args = _after("at, stream_id, stream_version", after, 3)
    rows = await conn.fetch(
        f"""SELECT resource_type, resource_id, event_type, actor, change, at, stream_id, stream_version
              FROM drift WHERE workspace_id = $1 AND {condition}
             ORDER BY at, stream_id, stream_version LIMIT $2""",
        workspace_id,
        limit + 1,
        *args,
    )
    return _page(rows, limit, _drift, lambda r: (r["at"], r["stream_id"], r["stream_version"]))


async def outbox(
    conn: Conn, workspace_id: UUID, *, after: tuple[Any, ...] | None = None, limit: int = 1000
) -> Page:
    """The workspace's notifications. The welcome to a person new to the product is the product's message,
    not the workspace's: it is not listed, or the listing would tell whether the person is known in another
    workspace (issue 8, defect 1)."""
    condition, args = _after("o.position, o.kind", after, 3)
    rows = await conn.fetch(
        f"""SELECT o.position, o.kind, o.member_id, o.recipient, o.payload, o.created_at,
                  CASE WHEN d.status = 'sent' THEN d.sent_at END AS sent_at,
                  CASE WHEN d.status = 'failed' THEN d.reason END AS failure
             FROM outbox o LEFT JOIN outbox_delivery d ON d.position = o.position AND d.kind = o.kind
            WHERE o.workspace_id = $1 AND o.kind <> 'welcome' AND {condition}
            ORDER BY o.position, o.kind LIMIT $2""",
        workspace_id,
        limit + 1,
        *args,
    )
    return _page(rows, limit, _outbox_item, lambda r: (r["position"], r["kind"]))


def _outbox_item(r: asyncpg.Record) -> dict[str, Any]:
    return {
        "position": r["position"],
        "kind": r["kind"],
        "member_id": str(r["member_id"]) if r["member_id"] else None,
        "recipient": r["recipient"],
        "payload": r["payload"],
        "created_at": _iso(r["created_at"]),
        "sent_at": _iso(r["sent_at"]),
        "failure": r["failure"],  # a 5xx refusal: never sent (README "Notifications")
    }
