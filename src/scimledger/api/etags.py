"""ETags and conditional requests (RFC 7644 §3.14, RFC 9110 §13): ``If-Match`` and ``If-None-Match``."""

from __future__ import annotations

import re

from starlette.requests import Request

from scimledger.scim.errors import PreconditionFailed

_TAG = re.compile(r'^\s*(?:W/)?"(\d+)"\s*$')


def expected_version(request: Request) -> int | None:
    """The version ``If-Match`` demands (``*`` or absent: any). A tag that is no version of ours can never
    match: 412, as RFC 9110 §13.1.1 requires."""
    header = request.headers.get("if-match")
    if header is None or header.strip() == "*":
        return None
    versions = [m.group(1) for part in header.split(",") if (m := _TAG.match(part))]
    if len(versions) != 1:
        raise PreconditionFailed(f"If-Match {header!r} does not match the current version")
    return int(versions[0])


def not_modified(request: Request, etag: str) -> bool:
    """``If-None-Match`` lists the current tag (weak comparison) or is ``*``."""
    header = request.headers.get("if-none-match")
    if header is None:
        return False
    tags = [t.strip() for t in header.split(",")]
    return "*" in tags or any(t.removeprefix("W/") == etag.removeprefix("W/") for t in tags)
