"""Where a member's notifications go (README "Workspace rules": a userName that is not an email address).

A userName is any name the IdP uses (RFC 7643 §4.1.1: "often ... an email address", not always: OneLogin's
usernames, directory logins). Mail goes to the userName when it is an email address; otherwise to the first
email address among the member's ``emails``, the ``primary`` one first (RFC 7643 §4.1.2). With neither,
nothing is sent (the outbox queues no mail it cannot deliver) and an admin cannot invite the member.
"""

from __future__ import annotations

from typing import Any

MAX_LOCAL = 64  # RFC 5321 §4.5.3.1.1
MAX_DOMAIN = 253  # RFC 1035 §2.3.4, without the trailing dot
MAX_LABEL = 63


def _is_label(label: str) -> bool:
    """A DNS label: letters (any script: IDNs), digits and inner hyphens."""
    return (
        0 < len(label) <= MAX_LABEL
        and not label.startswith("-")
        and not label.endswith("-")
        and all(ch.isalnum() or ch == "-" for ch in label)
    )


def is_email_address(text: str) -> bool:
    """Whether ``text`` is a mailbox mail can be sent to, ``local@domain.tld`` (RFC 5321 §4.1.2, without
    quoted local parts and address literals): no blanks or control characters, one ``@``, a domain name of
    at least two labels whose last is not a number."""
    local, at, domain = text.rpartition("@")
    if not at or not local or "@" in local or len(local) > MAX_LOCAL or len(domain) > MAX_DOMAIN:
        return False
    if any(ch.isspace() or not ch.isprintable() for ch in local):
        return False
    labels = domain.split(".")
    return len(labels) >= 2 and all(_is_label(label) for label in labels) and not labels[-1].isdigit()


def notify_address(user_name: str, profile: dict[str, Any]) -> str | None:
    """The address a member's notifications go to (module docstring), or None when there is none."""
    if is_email_address(user_name):
        return user_name
    emails = profile.get("emails")
    if not isinstance(emails, list):
        return None
    entries = [e for e in emails if isinstance(e, dict) and isinstance(e.get("value"), str)]
    primary_first = sorted(entries, key=lambda e: e.get("primary") is not True)
    return next((v for e in primary_first if is_email_address(v := e["value"].strip())), None)
