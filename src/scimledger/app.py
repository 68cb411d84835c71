"""Composition root: settings → pool → event store → routes. Nothing is built at import time."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.routing import Route

from projections.runner import CatchUpRunner
from scimledger import pg
from scimledger.api import errors, scim_users
from scimledger.config import Settings
from scimledger.store.event_store import EventStore

log = logging.getLogger("scimledger")


def routes() -> list[Route]:
    return [
        Route("/scim/v2/Users", scim_users.create_user, methods=["POST"]),
        Route("/scim/v2/Users", scim_users.list_users, methods=["GET"]),
        Route("/scim/v2/Users/{id}", scim_users.get_user, methods=["GET"]),
    ]


def create_app(settings: Settings | None = None, *, run_lagging: bool = True) -> Starlette:
    """The ASGI app. ``run_lagging`` starts the catch-up runner for lagging projections (outbox)."""
    settings = settings or Settings.from_env()

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        url = settings.database_url or pg.resolve_database_url(settings.home)
        pool = await pg.create_pool(url)
        async with pool.acquire() as conn:
            await pg.migrate(conn)
        app.state.pool = pool
        app.state.store = EventStore(pool)
        runner = CatchUpRunner(pool, url) if run_lagging else None
        if runner is not None:
            await runner.start()
        try:
            yield
        finally:
            if runner is not None:
                await runner.stop()
            await pool.close()

    app = Starlette(routes=routes(), exception_handlers=errors.HANDLERS, lifespan=lifespan)
    app.state.settings = settings
    return app
