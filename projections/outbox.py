"""Notifications outbox (lagging projection): events become rows to send, exactly once per event.

Seed 000: a member added directly gets an "added to workspace" email, plus a welcome email when the person is
new to the product; an invited member gets an invite; removal or deactivation revokes their sessions. The
primary key (position, kind) makes each notification exactly-once even if the runner re-applies a batch.
"""

from __future__ import annotations

from typing import Any

import asyncpg

from projections.base import Envelope
from scimledger.domain.addresses import is_email_address, notify_address
from scimledger.domain.personal import is_erased

name = "outbox"
tables = ("outbox",)
event_types = frozenset(
    {"MemberProvisioned", "MemberLinked", "MemberInvited", "MemberSessionsRevoked", "PersonalDataErased"}
)


async def _queue(
    conn: asyncpg.Connection, env: Envelope, kind: str, recipient: str, payload: dict[str, Any]
) -> None:
    assert env.position is not None, "the outbox only runs behind the log"
    await conn.execute(
        """INSERT INTO outbox
                  (position, kind, workspace_id, member_id, recipient, payload, created_at, event_tx)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8::text::xid8) ON CONFLICT DO NOTHING""",
        env.position,
        kind,
        env.workspace_id,
        env.event.originator_id,
        recipient,
        payload,
        env.event.timestamp,
        str(env.tx or 0),
    )


async def _first_membership(conn: asyncpg.Connection, env: Envelope) -> bool:
    """No membership of this person anywhere earlier in the log's (tx, position) order, the order the runner
    applies it in (index ``events_person_joined``). Before
    issue 8 a MemberProvisioned was always a person's first, so older logs give the same rows."""
    return bool(
        await conn.fetchval(
            """SELECT NOT EXISTS (SELECT 1 FROM events WHERE (data->>'person_id') = $1
                  AND (tx, position) < ($3::text::xid8, $2)
                  AND event_type IN ('MemberProvisioned', 'MemberLinked', 'MemberInvited'))""",
            env.event.person_id,
            env.position,
            str(env.tx or 0),
        )
    )


async def _sessions_recipient(conn: asyncpg.Connection, env: Envelope) -> str:
    """Where a member's "sessions ended" goes: the userName when it is an email address, else the address
    the member's invite or "added" went to (README "Workspace rules"), else the userName."""
    user_name: str = env.event.user_name
    if is_email_address(user_name):
        return user_name
    found = await conn.fetchval(
        """SELECT recipient FROM outbox
            WHERE workspace_id = $1 AND member_id = $2 AND kind IN ('invite', 'added')
            ORDER BY position DESC LIMIT 1""",
        env.workspace_id,
        env.event.originator_id,
    )
    return str(found) if found is not None else user_name


async def apply(conn: asyncpg.Connection, env: Envelope) -> None:
    e, kind = env.event, env.event_type
    if kind == "PersonalDataErased":  # issue 11: the member's notifications go with the address they name
        await conn.execute("DELETE FROM outbox WHERE member_id = $1", e.originator_id)
        return
    if is_erased(e.user_name):  # its key is destroyed: erased, no address left to send to
        return
    if kind == "MemberSessionsRevoked":
        recipient = await _sessions_recipient(conn, env)
        await _queue(conn, env, "sessions_revoked", recipient, {"reason": e.reason})
        return
    found = notify_address(e.user_name, e.profile)  # the userName, or its email (README "Workspace rules")
    if found is None:  # nowhere to send it: nothing is queued (README "Workspace rules")
        return
    if kind in ("MemberProvisioned", "MemberLinked"):
        if e.status != "active":
            return
        await _queue(conn, env, "added", found, {"workspace_id": str(env.workspace_id)})
        if kind == "MemberProvisioned" and await _first_membership(conn, env):
            # Seed 000 "New users also receive a welcome email": new to the product, decided here from the
            # whole log, not by the workspace's event, which must not tell (issue 8; not listed by the API).
            await _queue(conn, env, "welcome", found, {"workspace_id": str(env.workspace_id)})
    elif kind == "MemberInvited":
        await _queue(conn, env, "invite", found, {"workspace_id": str(env.workspace_id)})
