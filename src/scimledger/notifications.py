"""Sending the notifications outbox (seed 000: "added to workspace", welcome, invite; sessions revoked for
the product's session store). Pluggable: the default sender writes a log line; ``SCIMLEDGER_SMTP_URL``
(``smtp://host:port``) sends mail with the standard library instead.

Delivery protocol: at-least-once, at most one repeat per process crash (README, "Notifications"; issue 8,
defect 7). Every server process delivers (its catch-up runner), until nothing is pending:

1. A pass starts at a *floor*: just below the oldest outbox row with no ``outbox_delivery`` row, whoever is
   sending it. The floor is read without skipping locked rows, so it never passes a row that another
   process holds: when that process dies, the row is found again by the next pass of any survivor.
2. Then one notification at a time, each in its own short transaction: lock the next unsent row
   (``FOR UPDATE SKIP LOCKED``: rows in flight elsewhere are left to their sender), check in a fresh
   statement that nobody recorded it meanwhile, hand it to the sender, record it in ``outbox_delivery``,
   commit (without waiting for the WAL flush: the record survives the process at once, and only a crash
   of PostgreSQL itself may forget its last fraction of a second). A message is thus recorded as soon as
   the mail server accepted it; only a crash between the acceptance and the commit sends one message
   again.
3. Every attempt at one row carries the same ``Message-ID`` (RFC 5322 §3.6.4), made of the row's key
   (position, kind) and the installation's id, so a receiver can drop a repeat.

A sender that fails leaves its row unrecorded and unlocked; the runner retries it at its next wake.
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
    message_id: str  # the same for every attempt: see message_id()


class Sender(Protocol):
    async def send(self, notification: Notification) -> None: ...


class LogSender:
    """The default: one log line per notification."""

    async def send(self, notification: Notification) -> None:
        log.info(
            "notification %s to %s (workspace %s) %s",
            notification.kind,
            notification.recipient,
            notification.workspace_id,
            notification.message_id,
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
        message["Message-ID"] = notification.message_id
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


def message_id(installation: UUID, position: int, kind: str) -> str:
    """The ``Message-ID`` of outbox row (position, kind) of this installation (table ``installation``)."""
    return f"<{position}.{kind}@{installation}.scimledger>"


FLOOR = """SELECT greatest($1, coalesce(
                  (SELECT o.position - 1 FROM outbox o
                    WHERE o.position > $1 AND NOT EXISTS (SELECT 1 FROM outbox_delivery d
                                                          WHERE d.position = o.position AND d.kind = o.kind)
                    ORDER BY o.position LIMIT 1),
                  (SELECT max(position) FROM outbox), $1)),
           (SELECT id FROM installation)"""
CLAIM = """SELECT o.position, o.kind, o.workspace_id, o.recipient, o.payload FROM outbox o
            WHERE (o.position, o.kind) > ($1::bigint, $2::text)
              AND NOT EXISTS (SELECT 1 FROM outbox_delivery d
                              WHERE d.position = o.position AND d.kind = o.kind)
            ORDER BY o.position, o.kind LIMIT 1 FOR UPDATE OF o SKIP LOCKED"""
# The record is visible at once and survives the process; only a PostgreSQL crash within a fraction of a
# second may forget it (that message is then sent again): no WAL flush per message.
NO_WAIT = "SET LOCAL synchronous_commit = off"
RECORDED = "SELECT EXISTS (SELECT 1 FROM outbox_delivery WHERE position = $1 AND kind = $2)"
RECORD = "INSERT INTO outbox_delivery (position, kind, sent_at) VALUES ($1, $2, now()) ON CONFLICT DO NOTHING"


async def deliver_pending(pool: asyncpg.Pool, sender: Sender, *, limit: int = 100, after: int = 0) -> int:
    """Send up to ``limit`` unsent notifications after position ``after``, oldest first; returns how many."""
    sent, _ = await deliver_batch(pool, sender, limit=limit, after=after)
    return sent


async def deliver_batch(
    pool: asyncpg.Pool, sender: Sender, *, limit: int = 100, after: int = 0
) -> tuple[int, int]:
    """One pass of the protocol above from the floor hint ``after``: sends up to ``limit`` notifications,
    each recorded as it is accepted. Returns how many, and the floor, the hint for the next pass (every
    notification at or below it is recorded as sent)."""
    async with pool.acquire() as conn:
        floor, installation = await conn.fetchrow(FLOOR, after)
    cursor: tuple[int, str] = (floor + 1, "")  # (position, kind) > cursor: every kind at floor + 1 on
    sent = 0
    while sent < limit:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(NO_WAIT)
            row = await conn.fetchrow(CLAIM, *cursor)
            if row is None:
                break
            position, kind, workspace_id, recipient, payload = row
            cursor = (position, kind)
            if await conn.fetchval(RECORDED, position, kind):  # recorded after the claim's snapshot
                continue
            mid = message_id(installation, position, kind)
            await sender.send(Notification(position, kind, workspace_id, recipient, payload, mid))
            await conn.execute(RECORD, position, kind)
        sent += 1
    return sent, floor
