"""What the ``scimledger`` commands share: the operator's metadata, running work against the store, and the
one-line JSON and error output (README "CLI"). Its own module so that ``cli`` and ``domain_cli`` both import
it and neither imports the other's helpers."""

from __future__ import annotations

import asyncio
import getpass
import json
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from scimledger import pg
from scimledger.app import build_store
from scimledger.config import Settings
from scimledger.store.event_store import EventStore, Metadata

T = TypeVar("T")


def _cli_metadata() -> Metadata:
    user = getpass.getuser()
    return Metadata(actor_kind="operator", actor_id=user, actor_name=user, source="system")


def _with_store(settings: Settings, work: Callable[[EventStore], Awaitable[T]]) -> T:
    url = settings.database_url or pg.resolve_database_url(settings.home)

    async def run() -> T:
        pool = await pg.create_pool(url, min_size=1, max_size=4)
        try:
            async with pool.acquire() as conn:
                await pg.migrate(conn)
            return await work(build_store(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _usage(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2
