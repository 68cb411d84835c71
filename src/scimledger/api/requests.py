"""Reading SCIM requests: JSON bodies (``application/scim+json`` or ``application/json``, RFC 7644 §3.1)."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.requests import Request

from scimledger.scim.errors import InvalidSyntax, PayloadTooLarge

MAX_BODY_BYTES = 1_048_576


async def json_body(request: Request) -> Any:
    """The parsed body; malformed JSON is 400 ``invalidSyntax``."""
    raw = await request.body()
    if len(raw) > MAX_BODY_BYTES:
        raise PayloadTooLarge(f"request bodies are limited to {MAX_BODY_BYTES} bytes")
    if not raw.strip():
        raise InvalidSyntax("the request body is empty")
    try:
        return orjson.loads(raw)
    except orjson.JSONDecodeError as error:
        raise InvalidSyntax(f"the request body is not valid JSON: {error}") from error


def base_url(request: Request) -> str:
    """The absolute SCIM base URL for ``meta.location`` (configurable, else from the request)."""
    public: str | None = request.app.state.settings.public_url
    if public:
        return f"{public}/scim/v2"
    return f"{str(request.base_url).rstrip('/')}/scim/v2"
