"""The ceiling for a create (``make bench``): the least a create can do, one jsonb INSERT per request.

Same stack as scimledger (Starlette on uvicorn, the asyncpg pool of ``scimledger.pg.create_pool`` with its
default size and JSON codecs), against the same PostgreSQL (``DATABASE_URL``). ``bench/seeding.py`` creates
the table. Run: ``python bench/ceiling_app.py --host H --port P --workers N``.

A ceiling should not carry a fixable server bug: with ``--workers`` > 1, uvicorn binds the listening socket
with ``proto=0``, so asyncio leaves Nagle on for accepted connections (uvicorn issue #3149) and keep-alive
responses wait ~40 ms for delayed ACKs. ``main`` binds it as IPPROTO_TCP instead.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import socket
from collections.abc import AsyncIterator

import uvicorn
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route
from uvicorn.supervisors import Multiprocess

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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8001)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    config = uvicorn.Config(
        "ceiling_app:app", host=args.host, port=args.port, workers=args.workers, access_log=False
    )
    if args.workers == 1:
        uvicorn.Server(config).run()
        return
    bound = config.bind_socket()
    sock = socket.socket(bound.family, bound.type, socket.IPPROTO_TCP, fileno=bound.detach())
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()


if __name__ == "__main__":
    main()
