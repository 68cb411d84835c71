"""Read model of SCIM bearer tokens (seed 004: status, created by/at, revoked by/at).

Inline, so that a revocation takes effect on the very next request, in every worker.
"""

from __future__ import annotations

import asyncpg

from projections.base import Envelope

name = "tokens"
tables = ("tokens",)
event_types = frozenset({"TokenIssued", "TokenRevoked"})


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    e = env.event
    if env.event_type == "TokenIssued":
        await conn.execute(
            """INSERT INTO tokens (id, workspace_id, name, description, scopes, secret_hash, created_at,
                                   created_by)
               VALUES ($1, $2, $3, $4, $5, $6, $7, $8)""",
            e.originator_id,
            env.workspace_id,
            e.name,
            e.description,
            list(e.scopes),
            bytes.fromhex(e.secret_hash),
            e.timestamp,
            e.created_by,
        )
    elif env.event_type == "TokenRevoked":
        await conn.execute(
            "UPDATE tokens SET revoked_at = $2, revoked_by = $3 WHERE id = $1",
            e.originator_id,
            e.timestamp,
            e.revoked_by,
        )
        # Delivered on commit only; each process's token cache evicts (src/scimledger/api/token_cache.py).
        await conn.execute("SELECT pg_notify('scimledger_tokens', $1)", str(e.originator_id))
