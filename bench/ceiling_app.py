"""The machine's ceiling for ``bench/run.py``: the least a create can do, one jsonb INSERT per request.

Same stack as scimledger (Starlette on uvicorn, the asyncpg pool of ``scimledger.pg.create_pool`` with its
default size and JSON codecs), against the same PostgreSQL (``DATABASE_URL``). ``bench/run.py`` creates the
table. Run: ``uvicorn --app-dir bench ceiling_app:app``.
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import AsyncIterator

from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimledger import pg

TABLE = "bench_ceiling"


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await pg.create_pool(os.environ["DATABASE_URL"])
    try:
        yield
    finally:
        await app.state.pool.close()


async def ingest(request: Request) -> Response:
    """Store the body as one jsonb row (PostgreSQL parses it); 201 like a SCIM create."""
    body = (await request.body()).decode()
    row_id = await request.app.state.pool.fetchval(
        f"INSERT INTO {TABLE} (doc) VALUES ($1) RETURNING id", body
    )
    return Response(f'{{"id":{row_id}}}', status_code=201, media_type="application/json")


app = Starlette(routes=[Route("/ingest", ingest, methods=["POST"])], lifespan=lifespan)
