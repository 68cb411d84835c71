"""What the ``scimledger`` commands share: the operator's metadata, running work against the store, the
one-line JSON and error output, and checking the configuration before anything starts (README "CLI"). Its
own module so that ``cli`` and the other CLI modules import it and none imports another's helpers."""

from __future__ import annotations

import asyncio
import getpass
import json
import os
import sys
from collections.abc import Awaitable, Callable, Mapping
from typing import Any, TypeVar
from urllib.parse import urlsplit

import asyncpg

from scimledger import pg
from scimledger.app import build_store
from scimledger.config import ConfigError, Settings, check_database_url, check_public_url
from scimledger.store.event_store import EventStore, Metadata

T = TypeVar("T")


class DatabaseUnavailable(ConfigError):
    """The database a setting names cannot be reached (or refuses us): one line naming the setting."""


def _cli_metadata() -> Metadata:
    user = getpass.getuser()
    return Metadata(actor_kind="operator", actor_id=user, actor_name=user, source="system")


def database_setting(settings: Settings, *, owner: bool = False) -> str:
    """Which setting names the database a command connects to (for error messages)."""
    if owner and settings.migrate_database_url:
        return "SCIMLEDGER_MIGRATE_URL"
    if settings.database_url:
        return "DATABASE_URL"
    return f"the embedded server under SCIMLEDGER_HOME={settings.home}"


def where(url: str) -> str:
    """``PostgreSQL at host:port, database db`` (never the password)."""
    parts = urlsplit(url)
    database = parts.path.lstrip("/") or "(default)"
    return f"PostgreSQL at {parts.hostname or 'localhost'}:{parts.port or 5432}, database {database}"


def reason(error: BaseException) -> str:
    """An exception as a short reason: asyncpg's ``Connect call failed`` says which address only."""
    if isinstance(error, ConnectionRefusedError) or "Connect call failed" in str(error):
        return "connection refused (is PostgreSQL running there?)"
    if isinstance(error, OSError) and error.strerror:
        return error.strerror
    return str(error) or type(error).__name__


async def connect_pool(url: str, setting: str) -> asyncpg.Pool:
    """A small pool on ``url``; DatabaseUnavailable naming ``setting`` when that fails."""
    try:
        return await pg.create_pool(url, min_size=1, max_size=4)
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        raise DatabaseUnavailable(setting, f"cannot connect to {where(url)}: {reason(error)}") from error


def _with_store(
    settings: Settings,
    work: Callable[[EventStore], Awaitable[T]],
    *,
    owner: bool = False,
    create: bool = False,
) -> T:
    """Run ``work`` against the database (migrated first): ``DATABASE_URL``, or with ``owner`` the schema
    owner's ``SCIMLEDGER_MIGRATE_URL``, else the embedded server (a new one only with ``create``)."""
    url = (settings.migrate_url if owner else settings.database_url) or pg.resolve_database_url(
        settings.home, create=create
    )
    setting = database_setting(settings, owner=owner)

    async def run() -> T:
        pool = await connect_pool(url, setting)
        try:
            async with pool.acquire() as conn:
                await pg.migrate(conn)
            return await work(build_store(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def check_environment(environ: Mapping[str, str] = os.environ) -> None:
    """Refuse values the server cannot use before anything starts (README "CLI": configuration), each with
    one line that names its variable."""
    from scimledger.api.rate_limit import Rate
    from scimledger.dns_proof import BadServerList, parse_servers

    for name in ("DATABASE_URL", "SCIMLEDGER_MIGRATE_URL"):
        if environ.get(name):
            check_database_url(name, environ[name])
    if environ.get("SCIMLEDGER_PUBLIC_URL"):
        check_public_url(environ["SCIMLEDGER_PUBLIC_URL"])
    smtp = environ.get("SCIMLEDGER_SMTP_URL")
    if smtp:
        try:
            parts = urlsplit(smtp)
            parts.port  # noqa: B018 - raises on a bad port
        except ValueError as error:
            raise ConfigError("SCIMLEDGER_SMTP_URL", f"{smtp!r} is not a URL ({error})") from None
        if parts.scheme != "smtp" or not parts.hostname:
            raise ConfigError("SCIMLEDGER_SMTP_URL", f"{smtp!r} is not smtp://host[:port]")
    for name in ("SCIMLEDGER_RATE_LIMIT", "SCIMLEDGER_AUTH_FAILURE_LIMIT"):
        if environ.get(name):
            try:
                Rate.parse(environ[name])
            except ValueError:
                raise ConfigError(
                    name, f"{environ[name]!r} is not RATE/s,BURST (e.g. 100/s,1000) or 0"
                ) from None
    if environ.get("SCIMLEDGER_DNS_SERVERS", "").strip():
        try:
            parse_servers(environ["SCIMLEDGER_DNS_SERVERS"])
        except BadServerList as error:
            raise ConfigError("SCIMLEDGER_DNS_SERVERS", str(error)) from None


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


def _usage(message: str) -> int:
    sys.stderr.write(f"error: {message}\n")
    return 2
