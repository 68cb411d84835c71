"""A server process for the log tests that can answer a real 500: the app of ``scimledger serve`` plus one
route, ``GET /test/boom``, whose handler raises, served by uvicorn with the logging configuration that
``serve`` uses (``SCIMLEDGER_LOG_FORMAT``, ``SCIMLEDGER_LOG_LEVEL``).

    python -m tests.e2e.log_server DATABASE_URL PORT
"""

from __future__ import annotations

import sys

import uvicorn
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimledger.app import create_app
from scimledger.config import Settings
from scimledger.logs import LogSettings
from tests.conftest import temp_home


async def boom(request: Request) -> Response:
    raise RuntimeError("a bug in a handler")


def main(database_url: str, port: int) -> None:
    app = create_app(
        Settings(home=temp_home(), public_url=None, database_url=database_url), run_lagging=False
    )
    app.router.routes.append(Route("/test/boom", boom, methods=["GET"]))
    settings = LogSettings.from_env()
    config = uvicorn.Config(
        app,
        host="127.0.0.1",
        port=port,
        log_level=settings.level,
        log_config=settings.dict_config(),
        access_log=False,
    )
    uvicorn.Server(config).run()


if __name__ == "__main__":
    main(sys.argv[1], int(sys.argv[2]))
