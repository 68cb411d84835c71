"""The machine's ceiling for a read (``make bench``): the least a look-up can do, one indexed SELECT.

``GET /lookup?userName=<name>`` selects one row by its text primary key from ``bench_read_ceiling``
(100,000 rows: the userNames and SCIM resources of the measured workspace, copied there by
``bench/seeding.py``) and answers its ``resource`` as JSON text, 404 when there is none. Same stack as
scimledger (Starlette on uvicorn, the asyncpg pool of ``scimledger.pg.create_pool`` with its default size
and JSON codecs), against the same PostgreSQL (``DATABASE_URL``).
Run: ``python bench/read_ceiling_app.py --host H --port P --workers N``.

Like ``bench/ceiling_app.py``, with ``--workers`` > 1 it binds the listening socket as IPPROTO_TCP so that
asyncio turns Nagle off on accepted connections (uvicorn issue #3149): a ceiling should not carry that bug.
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

TABLE = "bench_read_ceiling"
SCHEMA = f"CREATE TABLE {TABLE} (user_name text PRIMARY KEY, resource jsonb NOT NULL)"


@contextlib.asynccontextmanager
async def lifespan(app: Starlette) -> AsyncIterator[None]:
    app.state.pool = await pg.create_pool(os.environ["DATABASE_URL"])
    try:
        yield
    finally:
        await app.state.pool.close()


async def lookup(request: Request) -> Response:
    """One row by its key, as PostgreSQL renders the jsonb (no decode/encode round trip in Python)."""
    doc = await request.app.state.pool.fetchval(
        f"SELECT resource::text FROM {TABLE} WHERE user_name = $1", request.query_params.get("userName")
    )
    if doc is None:
        return Response('{"detail":"not found"}', status_code=404, media_type="application/json")
    return Response(doc, media_type="application/json")


app = Starlette(routes=[Route("/lookup", lookup, methods=["GET"])], lifespan=lifespan)


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8002)
    parser.add_argument("--workers", type=int, default=1)
    args = parser.parse_args()
    config = uvicorn.Config(
        "read_ceiling_app:app", host=args.host, port=args.port, workers=args.workers, access_log=False
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
