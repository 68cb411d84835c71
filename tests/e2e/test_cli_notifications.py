"""Notifications are seen, and failures neither flood the log nor block the queue (issue 10, defect 5; README
"Notifications"): the default sender writes a Maildir under SCIMLEDGER_HOME and one INFO line on the server's
stderr; a failing mail server is retried with exponential back-off (one line per failure, capped at a
minute); a message refused for good (5xx) is recorded as failed and the messages behind it go out."""

from __future__ import annotations

import json
import logging
import mailbox
import time
from collections.abc import Callable
from typing import Any

import asyncpg
import httpx
import pytest

from projections.runner import catch_up
from scimledger import admin_views, handlers, notifications
from scimledger.store.event_store import EventStore
from tests.conftest import SYSTEM, make_workspace
from tests.e2e.cli_processes import Serving, isolated_env, open_dir, wait_until
from tests.faults.smtp import Decision, Received, SmtpReceiver


def provision(url: str, token: str, user_name: str) -> None:
    answer = httpx.post(
        f"{url}/scim/v2/Users",
        json={"userName": user_name},
        headers={"Authorization": f"Bearer {token}"},
        timeout=10,
    )
    assert answer.status_code == 201, answer.text


def test_by_default_each_notification_is_a_maildir_message_and_an_info_line(database_url: str) -> None:
    home = open_dir("scimledger-mail-")
    with Serving(isolated_env(DATABASE_URL=database_url, SCIMLEDGER_HOME=str(home))) as serving:
        token = json.loads((home / "demo-credentials.json").read_text())["token"]
        provision(serving.url, token, "ada@example.com")
        box = home / "outbox"
        wait_until(lambda: (box / "new").is_dir() and len(list((box / "new").iterdir())) == 2, 20, "2 mails")
        wait_until(lambda: serving.output().count("scimledger.notifications") == 2, 10, "two log lines")
    messages = {str(m["Subject"]): m for m in mailbox.Maildir(box, create=False)}
    assert set(messages) == {notifications.SUBJECTS["added"], notifications.SUBJECTS["welcome"]}
    added = messages[notifications.SUBJECTS["added"]]
    assert added["To"] == "ada@example.com" and added["From"] == "scimledger@localhost"
    assert str(added["Message-ID"]).endswith(".scimledger>")
    [line] = [ln for ln in serving.output().splitlines() if str(added["Message-ID"]) in ln]
    assert "INFO" in line and "scimledger.notifications" in line and "notification added" in line
    assert str(box / "new") in line and "ada@example.com" not in line  # no personal data in the log


def test_a_failing_mail_server_is_logged_once_per_attempt_with_growing_pauses(database_url: str) -> None:
    """The server's own runner against a mail server that always answers 451: in six seconds, attempts at
    about 0, 1 and 3 s (then 7 s), each one line with the reason and no traceback; before, one a second."""
    home = open_dir("scimledger-smtp-")
    with SmtpReceiver(lambda _: "fail") as receiver:
        env = isolated_env(
            DATABASE_URL=database_url, SCIMLEDGER_HOME=str(home), SCIMLEDGER_SMTP_URL=receiver.url
        )
        with Serving(env) as serving:
            token = json.loads((home / "demo-credentials.json").read_text())["token"]
            provision(serving.url, token, "bob@example.com")
            wait_until(lambda: "try again later" in serving.output(), 20, "the first failure")
            time.sleep(6)
            output = serving.output()
    failures = [ln for ln in output.splitlines() if "try again later" in ln]
    assert 2 <= len(failures) <= 3, failures
    assert all("not delivered" in ln and "next attempt in" in ln for ln in failures)
    assert [ln.rsplit("next attempt in ", 1)[1] for ln in failures] == ["1 s", "2 s", "4 s"][: len(failures)]
    assert "Traceback" not in output


async def seed(store: EventStore, people: int) -> None:
    workspace: Any = await make_workspace(store, domains=("example.com",), seats=people)
    for n in range(people):
        name = f"p{n}@example.com"
        command = handlers.ProvisionUser(
            workspace_id=workspace.id, user_name=name, profile={"userName": name}
        )
        await handlers.provision_user(store, command, SYSTEM)
    await catch_up(store.pool)


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def counting(decision: Decision) -> tuple[Callable[[Received], Decision], list[Received]]:
    seen: list[Received] = []

    def decide(message: Received) -> Decision:
        seen.append(message)
        return decision

    return decide, seen


async def test_back_off_doubles_to_a_minute_and_makes_no_attempt_meanwhile(
    pool: asyncpg.Pool, store: EventStore, caplog: pytest.LogCaptureFixture
) -> None:
    await seed(store, 1)
    clock = Clock()
    decide, attempts = counting("fail")
    caplog.set_level(logging.WARNING, logger="scimledger.notifications")
    with SmtpReceiver(decide) as receiver:
        sender = notifications.Retrying(notifications.SmtpSender(receiver.url, "s@x.test"), clock=clock)
        pauses = []
        for n in range(9):
            assert await notifications.deliver_pending(pool, sender) == 0
            assert len(attempts) == n + 1
            pauses.append(sender.waiting())
            assert await notifications.deliver_pending(pool, sender) == 0  # during the pause: no attempt
            assert len(attempts) == n + 1
            clock.now += sender.waiting()
    assert pauses == [1, 2, 4, 8, 16, 32, 60, 60, 60]
    assert len(caplog.records) == 9
    assert all(r.exc_info is None and "SMTP 451 try again later" in r.getMessage() for r in caplog.records)
    assert await pool.fetchval("SELECT count(*) FROM outbox_delivery") == 0


async def test_after_a_success_the_next_failure_pauses_one_second_again(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await seed(store, 2)
    clock, answers = Clock(), iter(["fail", "fail", "accept", "fail"])
    with SmtpReceiver(lambda _: next(answers)) as receiver:
        sender = notifications.Retrying(notifications.SmtpSender(receiver.url, "s@x.test"), clock=clock)
        for _ in range(2):
            await notifications.deliver_pending(pool, sender)
            clock.now += sender.waiting()
        assert await notifications.deliver_pending(pool, sender) == 1  # accepted, then 451 again
    assert sender.waiting() == 1


async def test_a_refused_message_is_recorded_as_failed_and_the_queue_goes_on(
    pool: asyncpg.Pool, store: EventStore
) -> None:
    await seed(store, 3)  # 6 notifications: "added" and "welcome" for each
    first = await pool.fetchrow(
        "SELECT position, kind, workspace_id FROM outbox ORDER BY position, kind LIMIT 1"
    )
    refused_to = {"p0@example.com"}
    with SmtpReceiver(lambda m: "refuse" if str(m.message["To"]) in refused_to else "accept") as receiver:
        sender = notifications.Retrying(notifications.SmtpSender(receiver.url, "s@x.test"))
        assert await notifications.deliver_pending(pool, sender) == 6
        assert sender.waiting() == 0  # a refusal is the message's fault: no back-off
    assert len(receiver.messages) == 4
    rows = await pool.fetch(
        "SELECT position, kind, status, reason FROM outbox_delivery ORDER BY position, kind"
    )
    failed = [(r["position"], r["kind"], r["reason"]) for r in rows if r["status"] == "failed"]
    assert len(rows) == 6 and len(failed) == 2
    assert (first["position"], first["kind"], "554 message refused") in failed
    listed = await admin_views.outbox(pool, first["workspace_id"])
    shown = {(n["recipient"], n["kind"]): n for n in listed}
    assert shown[("p0@example.com", "added")]["failure"] == "554 message refused"
    assert shown[("p0@example.com", "added")]["sent_at"] is None
    assert shown[("p1@example.com", "added")]["failure"] is None
    assert shown[("p1@example.com", "added")]["sent_at"] is not None


async def test_the_maildir_is_made_even_when_the_data_directory_does_not_exist_yet(tmp_path: Any) -> None:
    """``serve`` with DATABASE_URL never creates SCIMLEDGER_HOME for a database: the first notification
    must still land (the fault suite delivered nothing when it did not)."""
    from uuid import uuid4

    home = tmp_path / "not-yet" / "home"
    sender = notifications.MaildirSender(home / "outbox", "scimledger@localhost")
    note = notifications.Notification(1, "added", uuid4(), "ada@example.com", {}, "<1.added@x.scimledger>")
    await sender.send(note)
    await sender.send(notifications.Notification(2, "added", uuid4(), "bob@example.com", {}, "<2.a@x>"))
    assert len(mailbox.Maildir(home / "outbox", create=False)) == 2
