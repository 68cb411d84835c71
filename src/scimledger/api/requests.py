"""Reading SCIM requests: JSON bodies (``application/scim+json`` or ``application/json``, RFC 7644 §3.1)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from scimledger.scim.errors import InvalidSyntax, InvalidValue

MAX_DEPTH = 32  # SCIM resources nest three levels; anything deeper is not a SCIM document


def check_depth(value: Any, limit: int = MAX_DEPTH, *, nul_possible: bool = True) -> None:
    """Refuse JSON nested deeper than ``limit`` (400 ``invalidSyntax``) or holding a NUL character, which
    PostgreSQL cannot store (400 ``invalidValue``), before anything stores it."""
    stack: list[tuple[Any, int]] = [(value, 1)]
    while stack:
        item, depth = stack.pop()
        if depth > limit:
            raise InvalidSyntax(f"the request body is nested deeper than {limit} levels")
        if isinstance(item, dict):
            stack.extend((v, depth + 1) for v in item.values())
            if nul_possible and any("\x00" in k for k in item):
                raise InvalidValue("NUL characters are not allowed")
        elif isinstance(item, list):
            stack.extend((v, depth + 1) for v in item)
        elif nul_possible and isinstance(item, str) and "\x00" in item:
            raise InvalidValue("NUL characters are not allowed")


async def json_body(request: Request) -> Any:
    """The parsed body; malformed JSON is 400 ``invalidSyntax``."""
    raw = await request.body()  # bounded by the BodyLimit middleware (api/body_limit.py) on every route
    if not raw.strip():
        raise InvalidSyntax("the request body is empty")
    try:
        body = orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidSyntax(f"the request body is not valid JSON: {error}") from error
    check_depth(body, nul_possible=b"\\u0000" in raw)
    return body


def base_url(request: Request) -> str:
    """The absolute SCIM base URL for ``meta.location`` (configurable, else from the request)."""
    public: str | None = request.app.state.settings.public_url
    if public:
        return f"{public}/scim/v2"
    return f"{str(request.base_url).rstrip('/')}/scim/v2"
