"""Sending the notifications outbox (seed 000: "added to workspace", welcome, invite; sessions revoked for
the product's session store). Pluggable (README "Notifications"): by default each message is written to
the Maildir ``outbox/`` under ``SCIMLEDGER_HOME`` with one INFO line on the server's log;
``SCIMLEDGER_SMTP_URL`` (``smtp://host:port``) sends mail with the standard library instead.

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

Failures (issue 10, defect 5). A sender that fails leaves its row unrecorded and unlocked; the server's
senders (``sender_from_env``) then back off (``Retrying``: 1 s, doubling up to a minute, one log line per
failure with its reason) and the runner tries again after that. A message the mail server refuses for good
(a 5xx reply to RCPT or DATA, RFC 5321 §4.2.1) is recorded as ``failed`` with the reason and the queue goes
on: it never blocks the messages behind it.
"""

from __future__ import annotations

import asyncio
import email.utils
import logging
import mailbox
import os
import re
import smtplib
import time
from collections.abc import Callable
from dataclasses import dataclass
from email.message import EmailMessage
from pathlib import Path
from typing import Any, Protocol
from urllib.parse import urlsplit
from uuid import UUID

import asyncpg

log = logging.getLogger("scimledger.notifications")
OUTBOX_DIR = "outbox"  # the default sender's Maildir, under SCIMLEDGER_HOME
FIRST_BACKOFF_SECONDS = 1.0
MAX_BACKOFF_SECONDS = 60.0

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


class Refused(Exception):
    """The mail server refused this message for good (a 5xx reply): recorded as failed, never retried."""

    def __init__(self, reason: str) -> None:
        super().__init__(reason)
        self.reason = reason


class Deferred(Exception):
    """No attempt was made: the sender is backing off after a failure (already logged)."""


def build_message(notification: Notification, sender: str) -> EmailMessage:
    """The mail of a notification; the same ``Message-ID`` on every attempt (module docstring, 3)."""
    subject = SUBJECTS.get(notification.kind, notification.kind)
    message = EmailMessage()
    message["From"], message["To"] = sender, notification.recipient
    message["Subject"] = subject
    message["Date"] = email.utils.formatdate()
    message["Message-ID"] = notification.message_id
    message.set_content(f"{subject}\n\n{notification.payload}\n")
    return message


class LogSender:
    """One log line per notification (library use and tests; the server writes a Maildir too)."""

    async def send(self, notification: Notification) -> None:
        log.info(  # no recipient: the server's log keeps no personal data (README "Erasure")
            "notification %s (workspace %s) %s",
            notification.kind,
            notification.workspace_id,
            notification.message_id,
        )


class MaildirSender:
    """The server's default: each message as a file in the Maildir ``path`` (``new/``; any mail client
    reads it, e.g. ``mutt -f``), safe with several processes, and one INFO line saying where it went."""

    def __init__(self, path: Path, sender: str) -> None:
        self.path, self.sender = path, sender
        self._maildir: mailbox.Maildir | None = None

    def _write(self, message: EmailMessage) -> Path:
        if self._maildir is None:  # the data directory itself may not exist yet (serve with DATABASE_URL)
            self.path.parent.mkdir(parents=True, exist_ok=True, mode=0o700)
            self._maildir = mailbox.Maildir(self.path, create=True)
        key = self._maildir.add(message)
        return self.path / "new" / key

    async def send(self, notification: Notification) -> None:
        written = await asyncio.to_thread(self._write, build_message(notification, self.sender))
        log.info(  # no recipient: the server's log keeps no personal data (README "Erasure")
            "notification %s (workspace %s) %s written to %s",
            notification.kind,
            notification.workspace_id,
            notification.message_id,
            written,
        )


_ADDRESS = re.compile(r"<?[^\s<>@]+@[^\s<>]+>?")


def _decoded(text: bytes | str) -> str:
    """A mail server's reply as text, mail addresses replaced: replies often quote the recipient, and the
    log and the delivery record keep no personal data (README "Erasure")."""
    decoded = text.decode("utf-8", "replace") if isinstance(text, bytes) else text
    return _ADDRESS.sub("<address>", decoded)


def refusal(error: smtplib.SMTPException) -> str | None:
    """Why the mail server refused *this message* for good, or None: a 5xx reply to every RCPT or to DATA
    (RFC 5321 §4.2.1). A 5xx to the connection or to MAIL FROM refuses every message alike (a setting to
    fix, not a message to drop): those are failures to retry."""
    if isinstance(error, smtplib.SMTPRecipientsRefused):
        answers = list(error.recipients.values())
        if answers and all(500 <= code < 600 for code, _ in answers):
            return "; ".join(f"{code} {_decoded(text)}" for code, text in answers)
        return None
    if isinstance(error, smtplib.SMTPDataError) and 500 <= error.smtp_code < 600:
        return f"{error.smtp_code} {_decoded(error.smtp_error)}"
    return None


def describe(error: BaseException) -> str:
    """A failure as one short reason."""
    if isinstance(error, smtplib.SMTPResponseException):
        return f"SMTP {error.smtp_code} {_decoded(error.smtp_error)}"
    return f"{type(error).__name__}: {error}"


class SmtpSender:
    """Mail through an SMTP relay, in a worker thread (smtplib blocks). Raises Refused for a 5xx."""

    def __init__(self, url: str, sender: str) -> None:
        parts = urlsplit(url)
        self.host, self.port, self.sender = parts.hostname or "127.0.0.1", parts.port or 25, sender

    def _send(self, notification: Notification) -> None:
        with smtplib.SMTP(self.host, self.port, timeout=10) as smtp:
            try:
                smtp.send_message(build_message(notification, self.sender))
            except smtplib.SMTPException as error:
                reason = refusal(error)
                if reason is not None:
                    raise Refused(reason) from error
                raise

    async def send(self, notification: Notification) -> None:
        await asyncio.to_thread(self._send, notification)


class Retrying:
    """A sender that backs off after a failure: no attempt for 1 s, then 2, 4, ... up to
    MAX_BACKOFF_SECONDS (``Deferred`` meanwhile), one log line per failure with its reason; a success
    resets it. A refusal for good (``Refused``) is the message's fault, not the mail server's: no back-off."""

    def __init__(
        self,
        inner: Sender,
        *,
        first: float = FIRST_BACKOFF_SECONDS,
        cap: float = MAX_BACKOFF_SECONDS,
        clock: Callable[[], float] = time.monotonic,
    ) -> None:
        self.inner, self.first, self.cap, self.clock = inner, first, cap, clock
        self.failures = 0
        self.retry_at = 0.0

    def waiting(self) -> float:
        """Seconds until the next attempt may be made (0: now)."""
        return max(0.0, self.retry_at - self.clock())

    async def send(self, notification: Notification) -> None:
        if self.waiting():
            raise Deferred(f"backing off for {self.waiting():.1f} s")
        try:
            await self.inner.send(notification)
        except Refused:
            raise
        except Exception as error:
            self.failures += 1
            delay = min(self.cap, self.first * 2 ** (self.failures - 1))
            self.retry_at = self.clock() + delay
            log.warning(
                "notification %s %s not delivered (%s); next attempt in %.0f s",
                notification.kind,
                notification.message_id,
                describe(error),
                delay,
            )
            raise Deferred(describe(error)) from error
        self.failures, self.retry_at = 0, 0.0


def sender_from_env(home: Path | None = None) -> Sender:
    """The server's sender: mail with ``SCIMLEDGER_SMTP_URL``, else the Maildir ``<home>/outbox``
    (without a home: log lines only); either way with back-off (``Retrying``)."""
    mail_from = os.environ.get("SCIMLEDGER_MAIL_FROM", "scimledger@localhost")
    url = os.environ.get("SCIMLEDGER_SMTP_URL")
    if url:
        return Retrying(SmtpSender(url, mail_from))
    if home is not None:
        return Retrying(MaildirSender(home / OUTBOX_DIR, mail_from))
    return Retrying(LogSender())


def message_id(installation: UUID, position: int, kind: str) -> str:
    """The ``Message-ID`` of outbox row (position, kind) of this installation (table ``installation``)."""
    return f"<{position}.{kind}@{installation}.scimledger>"


# The sender walks the outbox in the order the runner fills it, the log's (tx, position) order (then kind):
# a row never lands behind the floor (docs/write-path.md). A cursor is (event tx, position, kind).
OutboxCursor = tuple[int, int, str]
START: OutboxCursor = (0, 0, "")
FIRST_UNSENT = """SELECT o.event_tx::text::bigint, o.position FROM outbox o
                   WHERE (o.event_tx, o.position, o.kind) > ($1::text::xid8, $2::bigint, $3::text)
                     AND NOT EXISTS (SELECT 1 FROM outbox_delivery d
                                     WHERE d.position = o.position AND d.kind = o.kind)
                   ORDER BY o.event_tx, o.position, o.kind LIMIT 1"""
LAST_ROW = """SELECT o.event_tx::text::bigint, o.position, o.kind FROM outbox o
               ORDER BY o.event_tx DESC, o.position DESC, o.kind DESC LIMIT 1"""
INSTALLATION = "SELECT id FROM installation"
CLAIM = """SELECT o.event_tx::text::bigint, o.position, o.kind, o.workspace_id, o.recipient, o.payload
             FROM outbox o
            WHERE (o.event_tx, o.position, o.kind) > ($1::text::xid8, $2::bigint, $3::text)
              AND NOT EXISTS (SELECT 1 FROM outbox_delivery d
                              WHERE d.position = o.position AND d.kind = o.kind)
            ORDER BY o.event_tx, o.position, o.kind LIMIT 1 FOR UPDATE OF o SKIP LOCKED"""
# The record is visible at once and survives the process; only a PostgreSQL crash within a fraction of a
# second may forget it (that message is then sent again): no WAL flush per message.
NO_WAIT = "SET LOCAL synchronous_commit = off"
RECORDED = "SELECT EXISTS (SELECT 1 FROM outbox_delivery WHERE position = $1 AND kind = $2)"
RECORD = """INSERT INTO outbox_delivery (position, kind, sent_at, status, reason)
            VALUES ($1, $2, now(), $3, $4) ON CONFLICT DO NOTHING"""


async def deliver_pending(
    pool: asyncpg.Pool, sender: Sender, *, limit: int = 100, after: OutboxCursor = START
) -> int:
    """Send up to ``limit`` unsent notifications after ``after``, oldest first; returns how many."""
    sent, _ = await deliver_batch(pool, sender, limit=limit, after=after)
    return sent


async def _floor(conn: asyncpg.Connection, after: OutboxCursor) -> OutboxCursor:
    """Just before the first unsent row after ``after`` (every row before it is recorded as sent), else
    the last row; never behind ``after``."""
    first = await conn.fetchrow(FIRST_UNSENT, str(after[0]), after[1], after[2])
    if first is not None:
        return max(after, (first[0], first[1], ""))
    last = await conn.fetchrow(LAST_ROW)
    return max(after, (last[0], last[1], last[2])) if last is not None else after


async def deliver_batch(
    pool: asyncpg.Pool, sender: Sender, *, limit: int = 100, after: OutboxCursor = START
) -> tuple[int, OutboxCursor]:
    """One pass of the protocol above from the floor hint ``after``: sends up to ``limit`` notifications,
    each recorded as it is accepted (or refused for good). Returns how many, and the floor, the hint for the
    next pass (every notification at or below it is recorded)."""
    async with pool.acquire() as conn:
        floor = await _floor(conn, after)
        installation = await conn.fetchval(INSTALLATION)
    cursor = floor
    sent = 0
    while sent < limit:
        async with pool.acquire() as conn, conn.transaction():
            await conn.execute(NO_WAIT)
            row = await conn.fetchrow(CLAIM, str(cursor[0]), cursor[1], cursor[2])
            if row is None:
                break
            event_tx, position, kind, workspace_id, recipient, payload = row
            cursor = (event_tx, position, kind)
            if await conn.fetchval(RECORDED, position, kind):  # recorded after the claim's snapshot
                continue
            mid = message_id(installation, position, kind)
            try:
                await sender.send(Notification(position, kind, workspace_id, recipient, payload, mid))
            except Deferred:
                break  # the sender backs off (logged): this row stays unsent, the runner comes back later
            except Refused as refused:  # refused for good: recorded as failed, the queue goes on
                log.warning("notification %s %s refused: %s", kind, mid, refused.reason)
                await conn.execute(RECORD, position, kind, "failed", refused.reason)
            else:
                await conn.execute(RECORD, position, kind, "sent", None)
        sent += 1
    return sent, floor
