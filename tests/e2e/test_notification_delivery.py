"""Notifications survive a process that dies (issue 8, defect 7): real ``scimledger serve`` processes
deliver to a real SMTP receiver (tests/faults/smtp.py); one is killed with SIGKILL while the receiver holds
its message without answering (the mail server took it, the answer never came back)."""

from __future__ import annotations

import asyncio
import inspect
import time
from collections import Counter
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import pytest

from projections.runner import catch_up
from scimledger import handlers, notifications
from scimledger.store.event_store import EventStore
from tests.conftest import SYSTEM, make_workspace
from tests.faults.processes import ServeProcess
from tests.faults.smtp import Decision, Received, SmtpReceiver

PEOPLE = 70  # "added" and "welcome" each: 140 notifications, more than a batch of 100 (the old claim size)


async def seed(store: EventStore) -> int:
    """A backlog: PEOPLE provisioned with no runner about; returns how many notifications they make."""
    workspace: Any = await make_workspace(store, domains=("example.com",), seats=PEOPLE)
    for n in range(PEOPLE):
        command = handlers.ProvisionUser(
            workspace_id=workspace.id,
            user_name=f"p{n}@example.com",
            profile={"userName": f"p{n}@example.com"},
        )
        await handlers.provision_user(store, command, SYSTEM)
    return 2 * PEOPLE


def hang_at(sender: str, n: int) -> Callable[[Received], Decision]:
    """Accept everything, but hang on the ``n``-th message from ``sender``."""
    seen = Counter[str]()

    def decide(message: Received) -> Decision:
        seen[message.mail_from] += 1
        return "hang" if message.mail_from == sender and seen[sender] == n else "accept"

    return decide


async def wait_for(condition: Callable[[], Any], seconds: float, what: str) -> None:
    """Poll ``condition`` (a function, sync or async) until it is true."""
    deadline = time.monotonic() + seconds
    while not ((await found) if inspect.isawaitable(found := condition()) else found):
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        await asyncio.sleep(0.05)


def server(database_url: str, name: str, receiver: SmtpReceiver, log_dir: Path) -> ServeProcess:
    return ServeProcess(
        database_url,
        name=name,
        log_dir=log_dir,
        env={"SCIMLEDGER_SMTP_URL": receiver.url, "SCIMLEDGER_MAIL_FROM": f"{name}@scimledger.test"},
    )


async def all_recorded(pool: asyncpg.Pool, expected: int) -> bool:
    sent = await pool.fetchval("SELECT count(*) FROM outbox_delivery")
    return bool(sent == expected)


async def test_a_survivor_delivers_what_a_killed_process_was_sending(
    database_url: str, pool: asyncpg.Pool, store: EventStore, tmp_path: Path
) -> None:
    expected = await seed(store)
    with SmtpReceiver(hang_at("a@scimledger.test", 6)) as receiver:
        a, b = (server(database_url, name, receiver, tmp_path) for name in ("a", "b"))
        try:
            a.start()
            await wait_for(lambda: len(receiver.messages) >= 6, 30, "a's 6th message")
            b.start()  # a is stuck in the middle of its work; b delivers what it can
            await wait_for(
                lambda: any(m.mail_from.startswith("b@") for m in receiver.messages),
                30,
                "b's first message",
            )
            a.kill()
            await wait_for(lambda: all_recorded(pool, expected), 20, "every notification recorded as sent")
        finally:
            a.kill()
            b.stop()
    counts = Counter(m.key for m in receiver.messages)
    assert len(counts) == expected
    assert max(counts.values()) <= 2


async def test_after_a_kill_only_the_message_in_flight_is_sent_again_with_the_same_message_id(
    database_url: str, pool: asyncpg.Pool, store: EventStore, tmp_path: Path
) -> None:
    expected = await seed(store)
    with SmtpReceiver(hang_at("a@scimledger.test", 31)) as receiver:
        a, b = (server(database_url, name, receiver, tmp_path) for name in ("a", "b"))
        try:
            a.start()
            await wait_for(lambda: len(receiver.messages) >= 31, 30, "a's 31st message")
            a.kill()  # 30 accepted and answered, the 31st accepted and not answered
            b.start()
            await wait_for(lambda: all_recorded(pool, expected), 30, "every notification recorded as sent")
        finally:
            a.kill()
            b.stop()
    messages = receiver.messages
    assert len(messages) == expected + 1
    counts = Counter(m.key for m in messages)
    [(repeated, _)] = [(key, n) for key, n in counts.items() if n == 2]
    ids = {m.message_id for m in messages if m.key == repeated}
    assert len(ids) == 1 and None not in ids  # a receiver can drop the repeat
    assert len({m.message_id for m in messages}) == expected


async def test_a_refused_message_is_not_recorded_and_is_sent_later(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await seed(store)
    await catch_up(pool)
    refuse = True
    with SmtpReceiver(lambda _: "fail" if refuse else "accept") as receiver:
        sender = notifications.SmtpSender(receiver.url, "scimledger@scimledger.test")
        with pytest.raises(Exception, match="try again later"):
            await notifications.deliver_pending(pool, sender, limit=1)
        assert await pool.fetchval("SELECT count(*) FROM outbox_delivery") == 0
        refuse = False
        assert await notifications.deliver_pending(pool, sender, limit=1) == 1
    [message] = receiver.messages
    first = await pool.fetchrow("SELECT position, kind FROM outbox ORDER BY position, kind LIMIT 1")
    installation = await pool.fetchval("SELECT id FROM installation")
    assert message.message_id == f"<{first['position']}.{first['kind']}@{installation}.scimledger>"
