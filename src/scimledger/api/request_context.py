"""Request identity and the access log line (one ASGI middleware, outermost).

Every request gets a request id: the caller's ``X-Request-Id`` when it is well-formed (1-128 characters of
``A-Z a-z 0-9 . _ : / + = -``, starting with a letter or digit), otherwise one we generate (32 hex digits).
It is returned in the ``X-Request-Id`` response header, written to the access log line, and stored in the
metadata of every event the request causes (``request_context.request_id``).
"""

from __future__ import annotations

import logging
import re
import time
import uuid
from typing import Any

from starlette.requests import Request
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from scimledger import metrics

access_log = logging.getLogger("scimledger.access")

WELL_FORMED = re.compile(r"[A-Za-z0-9][A-Za-z0-9._:/+=-]{0,127}")
MAX_USER_AGENT = 256  # header-derived metadata is copied into every event a request causes: bounded


def request_id(request: Request) -> str:
    """The id of this request (set by RequestContext; generated here for apps built without it)."""
    found = request.scope.get("state", {}).get("request_id")
    return str(found) if found else uuid.uuid4().hex


def user_agent(request: Request) -> str | None:
    """The client's ``User-Agent``, cut to MAX_USER_AGENT characters."""
    value = request.headers.get("user-agent")
    return value[:MAX_USER_AGENT] if value is not None else None


def note(request: Request, **fields: Any) -> None:
    """Add fields (workspace, token id) to this request's access log line."""
    request.scope.setdefault("state", {}).setdefault("access", {}).update(fields)


def choose_request_id(header: bytes | None) -> str:
    if header is not None:
        text = header.decode("latin-1")
        if WELL_FORMED.fullmatch(text):
            return text
    return uuid.uuid4().hex


class RequestContext:
    """Assigns the request id, echoes it as ``X-Request-Id`` and writes one access log line per request."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        header = next((v for k, v in scope.get("headers", []) if k == b"x-request-id"), None)
        rid = choose_request_id(header)
        state = scope.setdefault("state", {})
        state["request_id"] = rid
        started = time.perf_counter()
        status = 500

        async def send_with_id(message: Message) -> None:
            nonlocal status
            if message["type"] == "http.response.start":
                status = message["status"]
                headers = [(k, v) for k, v in message.get("headers", []) if k.lower() != b"x-request-id"]
                message = {**message, "headers": [*headers, (b"x-request-id", rid.encode())]}
            await send(message)

        try:
            await self.app(scope, receive, send_with_id)
        finally:
            extra = state.get("access", {})
            method, path = scope.get("method", ""), scope.get("path", "")
            route = state.get("route_template") or path
            elapsed = time.perf_counter() - started
            metrics.request_answered(scope, method, status, elapsed)  # README "Operating it"
            access_log.info(
                "%s %s %s %.1fms request_id=%s%s",
                method,
                route,
                status,
                elapsed * 1000,
                rid,
                "".join(f" {k}={v}" for k, v in extra.items()),
                extra={
                    "method": method,
                    "route": route,
                    "path": path,
                    "status": status,
                    "duration_ms": round(elapsed * 1000, 3),
                    "request_id": rid,
                    **extra,
                },
            )
