"""SCIM responses in the media type the client accepts (RFC 7644 §3.8; ``scim.media_types``).

Every SCIM response is rendered as ``application/scim+json`` (``ScimResponse``), errors included; this
middleware relabels it ``application/json`` when the request's ``Accept`` prefers that (OneLogin), and adds
``Vary: Accept`` since the answer depends on it. The bytes are the same. Other routes are left alone.
"""

from __future__ import annotations

from starlette.datastructures import Headers, MutableHeaders
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scimledger.scim.media_types import SCIM_JSON, negotiate

SCIM_PREFIX = "/scim/"


class ScimContentNegotiation:
    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http" or not scope.get("path", "").startswith(SCIM_PREFIX):
            await self.app(scope, receive, send)
            return
        chosen = negotiate(Headers(scope=scope).get("accept"))

        async def relabel(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                content_type = headers.get("content-type", "")
                if content_type.split(";")[0].strip().lower() == SCIM_JSON:
                    if chosen != SCIM_JSON:
                        headers["content-type"] = chosen
                    headers.add_vary_header("Accept")
            await send(message)

        await self.app(scope, receive, relabel)
