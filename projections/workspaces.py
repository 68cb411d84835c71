"""Read model of workspaces: settings, seats, domains and admin keys (``GET /api/v1/workspace``)."""

from __future__ import annotations

import asyncpg

from projections.base import Envelope

name = "workspaces"
tables = ("workspaces", "workspace_domains", "admin_keys")
event_types = frozenset(
    {
        "WorkspaceCreated",
        "DomainAdded",
        "DomainChallengeIssued",
        "DomainVerified",
        "SeatAdded",
        "SeatAssigned",
        "SeatReleased",
        "AutomaticSeatAssignmentChanged",
        "AdminKeyIssued",
        "AdminKeyRevoked",
    }
)


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    e, kind, ws = env.event, env.event_type, env.workspace_id
    version = e.originator_version
    if kind == "WorkspaceCreated":
        await conn.execute(
            "INSERT INTO workspaces (id, name, created, version) VALUES ($1, $2, $3, $4)",
            e.originator_id,
            e.name,
            e.timestamp,
            version,
        )
    elif kind == "DomainAdded":
        await conn.execute(
            "INSERT INTO workspace_domains (workspace_id, domain) VALUES ($1, $2) ON CONFLICT DO NOTHING",
            ws,
            e.domain,
        )
    elif kind == "DomainChallengeIssued":  # issue 8: the token the workspace publishes to prove the domain
        await conn.execute(
            "UPDATE workspace_domains SET challenge = $3 WHERE workspace_id = $1 AND domain = $2",
            ws,
            e.domain,
            e.token,
        )
    elif kind == "DomainVerified":
        await conn.execute(
            "UPDATE workspace_domains SET verified = true WHERE workspace_id = $1 AND domain = $2",
            ws,
            e.domain,
        )
    elif kind == "SeatAdded":
        await conn.execute(
            "UPDATE workspaces SET seats_total = seats_total + $2, version = $3 WHERE id = $1",
            ws,
            e.count,
            version,
        )
    elif kind == "SeatAssigned":
        await conn.execute(
            "UPDATE workspaces SET seats_assigned = seats_assigned + 1, version = $2 WHERE id = $1",
            ws,
            version,
        )
    elif kind == "SeatReleased":
        await conn.execute(
            "UPDATE workspaces SET seats_assigned = seats_assigned - 1, version = $2 WHERE id = $1",
            ws,
            version,
        )
    elif kind == "AutomaticSeatAssignmentChanged":
        await conn.execute(
            "UPDATE workspaces SET automatic_seat_assignment = $2, version = $3 WHERE id = $1",
            ws,
            e.enabled,
            version,
        )
    elif kind == "AdminKeyIssued":
        await conn.execute(
            "INSERT INTO admin_keys (id, workspace_id, secret_hash, created_at) VALUES ($1, $2, $3, $4)",
            e.originator_id,
            ws,
            bytes.fromhex(e.secret_hash),
            e.timestamp,
        )
    elif kind == "AdminKeyRevoked":
        await conn.execute(
            "UPDATE admin_keys SET revoked_at = $2 WHERE id = $1", e.originator_id, e.timestamp
        )
