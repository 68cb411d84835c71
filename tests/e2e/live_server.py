"""A real HTTP server for tests: uvicorn serving ``create_app`` on 127.0.0.1 and a free port, in a thread.

Unlike ``httpx.ASGITransport``, requests go through a socket, uvicorn's HTTP parser and the app's lifespan
(its own pool and, by default, the catch-up runner), as they do under ``scimledger serve``; third-party
clients that only speak HTTP (the conformance tools) can be pointed at it. The server runs on its own
event loop in a daemon thread and is stopped (lifespan shutdown included) when the context exits.
"""

from __future__ import annotations

import contextlib
import socket
import threading
import time
from collections.abc import Iterator

import uvicorn

from scimledger.app import create_app
from scimledger.config import Settings
from tests.conftest import temp_home

STARTUP_TIMEOUT = 30.0
SHUTDOWN_TIMEOUT = 15.0


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


@contextlib.contextmanager
def live_server(database_url: str, *, run_lagging: bool = True) -> Iterator[str]:
    """Serve the app on ``database_url`` (already migrated or not) and yield its base URL
    (``http://127.0.0.1:<port>``). ``meta.location`` is built from the request, as in production."""
    app = create_app(
        Settings(home=temp_home(), public_url=None, database_url=database_url),
        run_lagging=run_lagging,
    )
    port = free_port()
    config = uvicorn.Config(
        app, host="127.0.0.1", port=port, lifespan="on", log_level="warning", access_log=False
    )
    server = uvicorn.Server(config)
    failure: list[BaseException] = []

    def run() -> None:
        try:
            server.run()
        except BaseException as error:  # reported to the test thread below
            failure.append(error)

    thread = threading.Thread(target=run, name=f"uvicorn-{port}", daemon=True)
    thread.start()
    try:
        deadline = time.monotonic() + STARTUP_TIMEOUT
        while not server.started:
            if failure or not thread.is_alive():
                raise RuntimeError(f"the server did not start: {failure[0] if failure else 'exited'}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the server did not start within {STARTUP_TIMEOUT} s")
            time.sleep(0.02)
        yield f"http://127.0.0.1:{port}"
    finally:
        server.should_exit = True
        thread.join(SHUTDOWN_TIMEOUT)
        if thread.is_alive():
            server.force_exit = True
            thread.join(SHUTDOWN_TIMEOUT)
    if failure:
        raise RuntimeError("the server thread failed") from failure[0]
