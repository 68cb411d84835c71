"""A mail server's refusal is logged and recorded without the recipient's address (README "Erasure": the
server's log and the delivery records keep no personal data)."""

from __future__ import annotations

import smtplib

from scimledger.notifications import describe, refusal


def test_a_refused_recipient_is_recorded_without_its_address() -> None:
    error = smtplib.SMTPRecipientsRefused(
        {"ada@example.com": (550, b"5.1.1 <ada@example.com>: no such user")}
    )
    assert refusal(error) == "550 5.1.1 <address>: no such user"


def test_a_failure_is_described_without_an_address() -> None:
    error = smtplib.SMTPDataError(554, b"message for bob.x@example.org rejected")
    assert "@" not in describe(error) and "554" in describe(error)
