"""Sending the notifications outbox (seed 000: "added to workspace", welcome, invite; sessions revoked for
the product's session store). Pluggable: the default sender writes a log line; ``SCIMLEDGER_SMTP_URL``
(``smtp://host:port``) sends mail with the standard library instead.

Delivery is at-least-once: a row is marked sent (``outbox_delivery``) after its sender returned.
"""

from __future__ import annotations

import asyncio
import logging
import os
import smtplib
from dataclasses import dataclass
from email.message import EmailMessage
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

log = logging.getLogger("scimledger.notifications")

SUBJECTS = {
    "added": "You have been added to a workspace",
    "welcome": "Welcome!",
    "invite": "You are invited to join a workspace",
    "sessions_revoked": "Your sessions were ended",
}


@dataclass(frozen=True)
class Notification:
    position: int
    kind: str
    workspace_id: UUID
    recipient: str
    payload: dict[str, Any]


class Sender(Protocol):
    async def send(self, notification: Notification) -> None: ...


class LogSender:
    """The default: one log line per notification."""

    async def send(self, notification: Notification) -> None:
        log.info(
            "notification %s to %s (workspace %s)",
            notification.kind,
            notification.recipient,
            notification.workspace_id,
        )


class SmtpSender:
    """Mail through an SMTP relay, in a worker thread (smtplib blocks)."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.sender = parts.hostname or "127.0.0.1", parts.port or 25, sender

    def _send(self, notification: Notification) -> None:
        message = EmailMessage()
        message["From"], message["To"] = self.sender, notification.recipient
        message["Subject"] = SUBJECTS.get(notification.kind, notification.kind)
        message.set_content(
            f"{SUBJECTS.get(notification.kind, notification.kind)}\n\n{notification.payload}\n"
        )
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            smtp.send_message(message)

    async def send(self, notification: Notification) -> None:
        await asyncio.to_thread(self._send, notification)


def sender_from_env() -> Sender:
    url = os.environ.get("SCIMLEDGER_SMTP_URL")
    if url:
        return SmtpSender(url, os.environ.get("SCIMLEDGER_MAIL_FROM", "scimledger@localhost"))
    return LogSender()


async def deliver_pending(pool: asyncpg.Pool, sender: Sender, *, limit: int = 100, after: int = 0) -> int:
    """Send up to ``limit`` unsent notifications after position ``after``, oldest first; returns how many."""
    sent, _ = await deliver_batch(pool, sender, limit=limit, after=after)
    return sent


async def deliver_batch(
    pool: asyncpg.Pool, sender: Sender, *, limit: int = 100, after: int = 0
) -> tuple[int, int]:
    """Like ``deliver_pending``, also returning a floor for the next call: every notification at or below it
    was sent or is being sent by another worker, so the next call need not look at them again."""
    async with pool.acquire() as conn, conn.transaction():
        rows = await conn.fetch(
            """SELECT o.position, o.kind, o.workspace_id, o.recipient, o.payload FROM outbox o
                WHERE o.position > $2 AND NOT EXISTS (SELECT 1 FROM outbox_delivery d
                                   WHERE d.position = o.position AND d.kind = o.kind)
                ORDER BY o.position, o.kind LIMIT $1 FOR UPDATE OF o SKIP LOCKED""",
            limit,
            after,
        )
        for row in rows:
            await sender.send(Notification(row[0], row[1], row[2], row[3], row[4]))
            await conn.execute(
                """INSERT INTO outbox_delivery (position, kind, sent_at) VALUES ($1, $2, now())
                   ON CONFLICT DO NOTHING""",
                row[0],
                row[1],
            )
    floor = rows[0][0] - 1 if rows else after
    return len(rows), floor
