"""Responses: orjson-encoded ``application/scim+json`` (RFC 7644 §3.1) and plain JSON for the admin API."""

from __future__ import annotations

from typing import Any

import orjson
from starlette.responses import Response

SCIM_MEDIA_TYPE = "application/scim+json"


class ScimResponse(Response):
    media_type = SCIM_MEDIA_TYPE

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)


class JSONResponse(Response):
    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return orjson.dumps(content)
