"""``scim.media_types.negotiate``: the media type of a SCIM response from the request's ``Accept`` (RFC 7644
§3.8: ``application/scim+json``, and ``application/json`` for clients that ask for it, such as OneLogin)."""

from __future__ import annotations

import pytest

from scimledger.scim.media_types import JSON, SCIM_JSON, negotiate


@pytest.mark.parametrize(
    ("accept", "expected"),
    [
        (None, SCIM_JSON),  # no preference: the SCIM media type
        ("", SCIM_JSON),
        ("*/*", SCIM_JSON),
        ("application/*", SCIM_JSON),
        ("application/scim+json", SCIM_JSON),
        ("application/scim+json; charset=utf-8", SCIM_JSON),  # Okta's spec test
        ("application/json", JSON),  # OneLogin
        ("Application/JSON", JSON),  # media types are case-insensitive (RFC 9110 §8.3.1)
        ("application/json; charset=utf-8", JSON),
        ("application/json, */*", JSON),  # named beats a wildcard of the same quality
        ("application/json, text/plain, */*", JSON),  # axios's default
        ("application/scim+json, application/json", SCIM_JSON),  # both named, same quality: ours
        ("application/json, application/scim+json", SCIM_JSON),
        ("application/json;q=0.5, application/scim+json", SCIM_JSON),
        ("application/scim+json;q=0.5, application/json", JSON),
        ("application/scim+json;q=0, */*", JSON),  # q=0: "not acceptable"
        ("application/json;q=0, */*", SCIM_JSON),
        ("text/html", SCIM_JSON),  # nothing acceptable: answered as SCIM anyway (RFC 9110 §12.5.1)
        ("application/json;q=bogus", SCIM_JSON),  # a malformed range is ignored
        ("application/json ; q=0.9 , application/scim+json ; q=0.8", JSON),
    ],
)
def test_negotiate(accept: str | None, expected: str) -> None:
    assert negotiate(accept) == expected
