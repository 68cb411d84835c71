"""Composition root: settings → pool → event store → routes. Nothing is built at import time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

import asyncpg
from starlette.applications import Starlette
from starlette.middleware import Middleware
from starlette.routing import Route
from starlette.types import ASGIApp, Receive, Scope, Send

from projections import INLINE
from projections.runner import CatchUpRunner
from scimledger import metrics, pg
from scimledger.api import (
    admin,
    admin_keys,
    admin_page,
    audit_log,
    audit_proof,
    bulk,
    discovery,
    erase,
    errors,
    health,
    idp_guide,
    listing,
    openapi,
    point_in_time,
    scim_groups,
    scim_users,
)
from scimledger.api import metrics as metrics_api
from scimledger.api.body_limit import BodyLimit
from scimledger.api.content_negotiation import ScimContentNegotiation
from scimledger.api.rate_limit import Limits, RateLimiter
from scimledger.api.request_context import RequestContext
from scimledger.api.token_cache import TokenCache
from scimledger.config import Settings
from scimledger.store.event_store import EventStore

log = logging.getLogger("scimledger")


class OneLine(logging.Filter):
    """asyncpg's pool logs a whole traceback each time it fails to reconnect during a database outage
    (about once a second): keep one line with the reason instead (issue 8, defect 9)."""

    def filter(self, record: logging.LogRecord) -> bool:
        if record.exc_info and record.exc_info[1] is not None:
            error = record.exc_info[1]
            record.msg = f"{record.getMessage()} ({type(error).__name__}: {error})"
            record.args = None
            record.exc_info = None
            record.exc_text = None
        return True


def build_store(pool: asyncpg.Pool) -> EventStore:
    """The event store with the read models it applies inline (the store never imports projections)."""
    return EventStore(pool, INLINE)


def routes() -> list[Route]:
    """The whole route table (RFC 7644 §3.2 endpoints)."""
    scim = "/scim/v2"
    return [
        Route(f"{scim}/ServiceProviderConfig", discovery.service_provider_config, methods=["GET"]),
        Route(f"{scim}/ResourceTypes", discovery.resource_types, methods=["GET"]),
        Route(f"{scim}/ResourceTypes/{{name}}", discovery.resource_types, methods=["GET"]),
        Route(f"{scim}/Schemas", discovery.schema_documents, methods=["GET"]),
        Route(f"{scim}/Schemas/{{urn}}", discovery.schema_documents, methods=["GET"]),
        Route(f"{scim}/Users", scim_users.create_user, methods=["POST"]),
        Route(f"{scim}/Users", listing.list_users, methods=["GET"]),
        Route(f"{scim}/Users/.search", listing.search_users, methods=["POST"]),
        Route(f"{scim}/Users/{{id}}", scim_users.get_user, methods=["GET"]),
        Route(f"{scim}/Users/{{id}}", scim_users.replace_user, methods=["PUT"]),
        Route(f"{scim}/Users/{{id}}", scim_users.patch_user, methods=["PATCH"]),
        Route(f"{scim}/Users/{{id}}", scim_users.delete_user, methods=["DELETE"]),
        Route(f"{scim}/Groups", scim_groups.create_group, methods=["POST"]),
        Route(f"{scim}/Groups", listing.list_groups, methods=["GET"]),
        Route(f"{scim}/Groups/.search", listing.search_groups, methods=["POST"]),
        Route(f"{scim}/Groups/{{id}}", scim_groups.get_group, methods=["GET"]),
        Route(f"{scim}/Groups/{{id}}", scim_groups.replace_group, methods=["PUT"]),
        Route(f"{scim}/Groups/{{id}}", scim_groups.patch_group, methods=["PATCH"]),
        Route(f"{scim}/Groups/{{id}}", scim_groups.delete_group, methods=["DELETE"]),
        Route(f"{scim}/.search", listing.search_root, methods=["POST"]),
        Route(f"{scim}/Bulk", bulk.bulk_request, methods=["POST"]),
        *admin_routes(),
        *admin_page.routes(),  # /admin: the audit page, outside /api/v1 (issue 7)
        *health.routes(),  # /healthz, /readyz, /metrics, /: README "Operating it" (issue 10)
        *metrics_api.routes(),
        *idp_guide.routes(),
    ]


def admin_routes() -> list[Route]:
    """The admin API (``/api/v1``): exact paths, other tools depend on them."""
    api = "/api/v1"
    return [
        Route(f"{api}/openapi.json", openapi.document, methods=["GET"]),
        Route(f"{api}/workspace", admin.get_workspace, methods=["GET"]),
        Route(f"{api}/workspace/settings", admin.patch_settings, methods=["PATCH"]),
        Route(f"{api}/seats", admin.add_seats, methods=["POST"]),
        Route(f"{api}/domains", admin.add_domain, methods=["POST"]),
        Route(f"{api}/domains/{{domain}}/verify", admin.verify_domain, methods=["POST"]),
        Route(f"{api}/tokens", admin.create_token, methods=["POST"]),
        Route(f"{api}/tokens", admin.list_tokens, methods=["GET"]),
        Route(f"{api}/tokens/{{id}}", admin.revoke_token, methods=["DELETE"]),
        Route(f"{api}/admin-keys", admin_keys.list_admin_keys, methods=["GET"]),
        Route(f"{api}/admin-keys", admin_keys.create_admin_key, methods=["POST"]),
        Route(f"{api}/admin-keys/{{id}}", admin_keys.revoke_admin_key, methods=["DELETE"]),
        Route(f"{api}/members", admin.list_members, methods=["GET"]),
        Route(f"{api}/members", admin.create_member, methods=["POST"]),
        Route(f"{api}/members/{{id}}", point_in_time.get_member, methods=["GET"]),  # as_of: from the log
        Route(f"{api}/members/{{id}}", admin.patch_member, methods=["PATCH"]),
        Route(f"{api}/members/{{id}}/accept-invite", admin.accept_invite, methods=["POST"]),
        Route(f"{api}/members/{{id}}/erase", erase.erase_member, methods=["POST"]),  # issue 11
        Route(f"{api}/teams", admin.list_teams, methods=["GET"]),
        Route(f"{api}/teams", admin.create_team, methods=["POST"]),
        Route(f"{api}/teams/{{id}}", admin.get_team, methods=["GET"]),
        Route(f"{api}/teams/{{id}}/unlink", admin.unlink_team, methods=["POST"]),
        Route(f"{api}/drift", admin.list_drift, methods=["GET"]),
        Route(f"{api}/outbox", admin.list_outbox, methods=["GET"]),
        Route(f"{api}/members/{{id}}/history", point_in_time.member_history, methods=["GET"]),
        Route(f"{api}/members/{{id}}/explain", point_in_time.member_explain, methods=["GET"]),
        Route(f"{api}/teams/{{id}}/history", point_in_time.team_history, methods=["GET"]),
        Route(f"{api}/teams/{{id}}/members", point_in_time.team_members, methods=["GET"]),
        Route(f"{api}/admins", point_in_time.admins, methods=["GET"]),
        Route(f"{api}/seats", point_in_time.seats, methods=["GET"]),
        Route(f"{api}/audit", audit_log.list_audit, methods=["GET"]),
        Route(f"{api}/audit/export", audit_log.export_audit, methods=["GET"]),
        Route(f"{api}/audit/verify", audit_proof.verify, methods=["GET"]),
        Route(f"{api}/audit/checkpoint", audit_proof.signed_checkpoint, methods=["GET"]),
        Route(f"{api}/audit/public-key", audit_proof.public_key, methods=["GET"]),
    ]


class IgnoreTrailingSlash:
    """``/Users/`` is ``/Users``: SCIM clients get the resource, not a redirect they may not follow."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        path = scope.get("path", "")
        if scope["type"] == "http" and len(path) > 1 and path.endswith("/"):
            scope = {**scope, "path": path.rstrip("/") or "/"}
        await self.app(scope, receive, send)


def create_app(settings: Settings | None = None, *, run_lagging: bool = True) -> Starlette:
    """The ASGI app. ``run_lagging`` starts the catch-up runner for lagging projections (outbox)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        pool_log = logging.getLogger("asyncpg.pool")
        if not any(isinstance(f, OneLine) for f in pool_log.filters):
            pool_log.addFilter(OneLine())
        url = settings.database_url or pg.resolve_database_url(settings.home)
        pool = await pg.create_pool(url)
        async with pool.acquire() as conn:
            await pg.migrate_if_owner(conn)
        app.state.pool = pool
        app.state.store = build_store(pool)
        app.state.token_cache = TokenCache(pool)
        attach, sender = app.state.token_cache.attach, metrics.counting_sender(settings.home)
        runner = CatchUpRunner(pool, url, sender, on_listen=attach) if run_lagging else None
        app.state.catch_up_runner = runner
        if runner is not None:
            await runner.start()
        metrics.worker_started(pool)
        try:
            yield
        finally:
            metrics.worker_stopped()
            if runner is not None:
                await runner.stop()
            await pool.close()

    app = Starlette(
        routes=routes(),
        middleware=[
            Middleware(RequestContext),
            Middleware(ScimContentNegotiation),
            Middleware(BodyLimit),
            Middleware(IgnoreTrailingSlash),
            Middleware(metrics_api.RouteTemplate),
        ],
        exception_handlers=errors.HANDLERS,
        lifespan=lifespan,
    )
    app.state.settings = settings
    app.state.rate_limiter = RateLimiter(Limits.from_env())
    app.state.cursor_secret = settings.cursor_secret()
    app.state.readiness = health.Readiness()
    app.state.metrics_access = metrics_api.Access.from_env()
    return app
