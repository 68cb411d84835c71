"""``GET /metrics``: Prometheus text format (README, "Operating it"), and the route template of each request.

Who may scrape: with ``SCIMLEDGER_METRICS_TOKEN`` set (16 characters or more), only a request carrying
``Authorization: Bearer <that token>`` (else 401); otherwise, with ``SCIMLEDGER_METRICS=open``, anyone;
otherwise nobody (404: the metrics are off). The metrics name routes, methods, statuses, event types and
notification kinds, never a workspace, a person or a secret.

A scrape also reads the outbox gauges and checks the database with the readiness probe (``api/health.py``).
"""

from __future__ import annotations

import asyncio
import hmac
import os
from dataclasses import dataclass

from prometheus_client import CONTENT_TYPE_LATEST, generate_latest
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from scimledger import metrics
from scimledger.api import health, rate_limit
from scimledger.api.auth import bearer
from scimledger.config import ConfigError
from scimledger.domain.errors import UnknownResource
from scimledger.scim.errors import Unauthorized

MIN_TOKEN_LENGTH = 16


@dataclass(frozen=True)
class Access:
    """``SCIMLEDGER_METRICS`` (``open`` or unset) and ``SCIMLEDGER_METRICS_TOKEN``."""

    open: bool = False
    token: str | None = None

    @classmethod
    def from_env(cls) -> Access:
        mode = os.environ.get("SCIMLEDGER_METRICS", "").strip().lower()
        if mode not in ("", "open"):
            raise ConfigError("SCIMLEDGER_METRICS", f"{mode!r}: the only value is 'open' (or set a token)")
        token = os.environ.get("SCIMLEDGER_METRICS_TOKEN") or None
        if token is not None and len(token) < MIN_TOKEN_LENGTH:
            raise ConfigError("SCIMLEDGER_METRICS_TOKEN", f"must be at least {MIN_TOKEN_LENGTH} characters")
        return cls(open=mode == "open", token=token)


def authorize(request: Request, access: Access) -> None:
    """Raise unless ``request`` may read the metrics (module docstring)."""
    if access.token is not None:
        rate_limit.check_address(request)
        given = bearer(request)
        if given is None or not hmac.compare_digest(given.encode(), access.token.encode()):
            rate_limit.failed_authentication(request)
            raise Unauthorized("/metrics needs Authorization: Bearer <SCIMLEDGER_METRICS_TOKEN>")
        return
    if not access.open:
        raise UnknownResource("metrics are off: set SCIMLEDGER_METRICS=open or SCIMLEDGER_METRICS_TOKEN")


async def page(request: Request) -> Response:
    access: Access = getattr(request.app.state, "metrics_access", None) or Access.from_env()
    authorize(request, access)
    found = await health.probe(request.app)
    metrics.observe_database(found.database_up)
    if found.checks.get("outbox") != health.NOT_CHECKED:
        metrics.observe_outbox(found.unsent, found.oldest_seconds)
    pool = getattr(request.app.state, "pool", None)
    if pool is not None:
        metrics.observe_pool(pool)
    body = await asyncio.to_thread(generate_latest, metrics.registry())  # multiprocess mode reads files
    return Response(body, media_type=CONTENT_TYPE_LATEST, headers={"Cache-Control": "no-store"})


def routes() -> list[Route]:
    return [Route("/metrics", page, methods=["GET"])]


class RouteTemplate:
    """Innermost middleware: after the router has run, note the matched route's template (``/Users/{id}``)
    in the request's state for the access log line and the request metrics (``metrics.request_answered``)."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        try:
            await self.app(scope, receive, send)
        finally:
            template = getattr(scope.get("route"), "path", None)
            if template is not None and isinstance(scope.get("state"), dict):
                scope["state"]["route_template"] = template
