"""``domain.addresses``: where a member's notifications go (README "Workspace rules", "Where mail goes"):
the userName when it is an email address, else the first email address of ``emails``, primary first."""

from __future__ import annotations

from typing import Any

import pytest

from scimledger.domain.addresses import is_email_address, notify_address


@pytest.mark.parametrize(
    "text",
    [
        "ada@example.com",
        "Ada.Lovelace+scim@Example.COM",
        "o'brien@sub.example.co.uk",
        "jdoe@contoso.onmicrosoft.com",
        "ana@bücher.example",
        "x@a-b.io",
    ],
)
def test_email_addresses(text: str) -> None:
    assert is_email_address(text)


@pytest.mark.parametrize(
    "text",
    [
        "jdoe",
        "CONTOSO\\jdoe",
        "",
        "@example.com",
        "ada@",
        "ada@localhost",
        "ada@@example.com",
        "ada@exa mple.com",
        "ada lovelace@example.com",
        "ada@example..com",
        "ada@-example.com",
        "ada@example.com.",
        "ada@example.123",
        "ada@[192.0.2.1]",
        "a\nb@example.com",
        f"{'a' * 65}@example.com",
    ],
)
def test_not_email_addresses(text: str) -> None:
    assert not is_email_address(text)


@pytest.mark.parametrize(
    ("user_name", "profile", "expected"),
    [
        ("ada@example.com", {}, "ada@example.com"),
        ("ada@example.com", {"emails": [{"value": "other@example.org", "primary": True}]}, "ada@example.com"),
        ("jdoe", {"emails": [{"value": "jdoe@example.org"}]}, "jdoe@example.org"),
        (
            "jdoe",
            {"emails": [{"value": "home@example.org"}, {"value": "work@example.org", "primary": True}]},
            "work@example.org",
        ),
        ("jdoe", {"emails": [{"value": "not an address", "primary": True}, {"value": "j@x.org"}]}, "j@x.org"),
        ("jdoe", {"emails": [{"value": " j@x.org "}]}, "j@x.org"),
        ("jdoe", {"emails": [{"primary": True}, "j@x.org", None]}, None),
        ("jdoe", {"emails": {"value": "j@x.org"}}, None),  # stored profiles always hold a list
        ("jdoe", {}, None),
        ("jdoe", {"emails": []}, None),
    ],
)
def test_notify_address(user_name: str, profile: dict[str, Any], expected: str | None) -> None:
    assert notify_address(user_name, profile) == expected
