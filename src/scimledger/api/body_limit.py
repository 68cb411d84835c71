"""Request bodies are bounded on every route (issue 8, defect 3): a body declared larger than the limit
(``Content-Length``) is refused before a byte of it is read, and a body without a length (chunked) is cut
off as soon as it passes the limit. Either way the answer is 413 (RFC 7644 §3.12 body on ``/scim``, the
admin error body elsewhere) and memory stays flat.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scimledger.api.errors import render_error
from scimledger.scim.errors import PayloadTooLarge

MAX_BODY_BYTES = 1_048_576  # also the Bulk maxPayloadSize (ServiceProviderConfig, README "Limits")


def too_large(limit: int) -> PayloadTooLarge:
    return PayloadTooLarge(f"request bodies are limited to {limit} bytes")


class BodyLimit:
    def __init__(self, app: ASGIApp, limit: int = MAX_BODY_BYTES) -> None:
        self.app = app
        self.limit = limit

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        declared = next((v for k, v in scope.get("headers", []) if k == b"content-length"), None)
        if declared is not None and (not declared.strip().isdigit() or int(declared) > self.limit):
            response = render_error(Request(scope), too_large(self.limit))
            response.headers["Connection"] = "close"
            await response(scope, receive, send)
            return
        seen = 0

        async def bounded_receive() -> Message:
            nonlocal seen
            message = await receive()
            if message["type"] == "http.request":
                seen += len(message.get("body", b""))
                if seen > self.limit:
                    raise too_large(self.limit)
            return message

        await self.app(scope, bounded_receive, send)
