"""Notifications outbox (lagging projection): events become rows to send, exactly once per event.

Seed 000: a member added directly gets an "added to workspace" email, plus a welcome email when the person is
new to the product; an invited member gets an invite; removal or deactivation revokes their sessions. The
primary key (position, kind) makes each notification exactly-once even if the runner re-applies a batch.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from projections.base import Envelope

name = "outbox"
tables = ("outbox",)
event_types = frozenset({"MemberProvisioned", "MemberLinked", "MemberInvited", "MemberSessionsRevoked"})


async def _queue(
    conn: asyncpg.Connection, env: Envelope, kind: str, recipient: str, payload: dict[str, Any]
) -> None:
    assert env.position is not None, "the outbox only runs behind the log"
    await conn.execute(
        """INSERT INTO outbox (position, kind, workspace_id, member_id, recipient, payload, created_at)
           VALUES ($1, $2, $3, $4, $5, $6, $7) ON CONFLICT DO NOTHING""",
        env.position,
        kind,
        env.workspace_id,
        env.event.originator_id,
        recipient,
        payload,
        env.event.timestamp,
    )


async def _first_membership(conn: asyncpg.Connection, env: Envelope) -> bool:
    """No membership of this person anywhere earlier in the log (index ``events_person_joined``). Before
    issue 8 a MemberProvisioned was always a person's first, so older logs give the same rows."""
    return bool(
        await conn.fetchval(
            """SELECT NOT EXISTS (SELECT 1 FROM events WHERE (data->>'person_id') = $1 AND position < $2
                  AND event_type IN ('MemberProvisioned', 'MemberLinked', 'MemberInvited'))""",
            env.event.person_id,
            env.position,
        )
    )


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    e, kind = env.event, env.event_type
    if kind in ("MemberProvisioned", "MemberLinked"):
        if e.status != "active":
            return
        await _queue(conn, env, "added", e.user_name, {"workspace_id": str(env.workspace_id)})
        if kind == "MemberProvisioned" and await _first_membership(conn, env):
            # Seed 000 "New users also receive a welcome email": new to the product, decided here from the
            # whole log, not by the workspace's event, which must not tell (issue 8; not listed by the API).
            await _queue(conn, env, "welcome", e.user_name, {"workspace_id": str(env.workspace_id)})
    elif kind == "MemberInvited":
        await _queue(conn, env, "invite", e.user_name, {"workspace_id": str(env.workspace_id)})
    elif kind == "MemberSessionsRevoked":
        await _queue(conn, env, "sessions_revoked", e.user_name, {"reason": e.reason})
