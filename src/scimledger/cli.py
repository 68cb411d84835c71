"""The ``scimledger`` command line (a contract other tools depend on; see README "CLI").

Every command honours ``DATABASE_URL`` and ``SCIMLEDGER_HOME``; without ``DATABASE_URL`` it starts (or finds
and reuses) the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import getpass
import json
import os
import socket
import sys
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar
from uuid import UUID

import asyncpg

from scimledger import handlers, pg
from scimledger.config import Settings
from scimledger.domain.errors import DomainError
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
            return await work(EventStore(pool))
        finally:
            await pool.close()

    return asyncio.run(run())


def _print(obj: dict[str, Any]) -> None:
    sys.stdout.write(json.dumps(obj) + "\n")
    sys.stdout.flush()


async def bootstrap_demo(store: EventStore, settings: Settings) -> dict[str, str] | None:
    """On the very first run with an empty database: a demo workspace, its SCIM token and admin key."""
    if await store.pool.fetchval("SELECT EXISTS (SELECT 1 FROM workspaces)"):
        return None
    meta = Metadata(actor_kind="system", actor_id="bootstrap", actor_name="first run", source="system")
    created = await handlers.create_workspace(
        store,
        handlers.CreateWorkspace(
            name="Demo", domains=("example.com",), seats=10, automatic_seat_assignment=True
        ),
        meta,
    )
    token = await handlers.issue_token(
        store, handlers.IssueToken(workspace_id=created.workspace_id, name="demo SCIM token"), meta
    )
    demo = {"workspace_id": str(created.workspace_id), "token": token.token, "admin_key": created.admin_key}
    path = settings.home / "demo-credentials.json"
    settings.home.mkdir(parents=True, exist_ok=True)
    path.write_text(json.dumps(demo, indent=2) + "\n")
    path.chmod(0o600)
    return demo


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    # Migrations and the demo bootstrap run as the schema's owner; the server connects with least privilege
    # (schema.sql, section 6): the embedded default's `scimledger_app`, or DATABASE_URL as given.
    owner_url = settings.migrate_url or pg.resolve_database_url(settings.home)

    async def prepare(store: EventStore) -> dict[str, str] | None:
        return await bootstrap_demo(store, settings)

    demo = _with_store(Settings(settings.home, settings.public_url, owner_url), prepare)
    url = settings.database_url or pg.ensure_server(settings.home).app_url()
    os.environ["DATABASE_URL"] = url  # workers reuse this server instead of starting their own
    if demo:
        sys.stderr.write(
            "\nFirst run: created a demo workspace "
            "(verified domain example.com, 10 seats, automatic seats).\n"
            f"  workspace id : {demo['workspace_id']}\n"
            f"  SCIM token   : {demo['token']}\n"
            f"  admin key    : {demo['admin_key']}\n"
            f"  (also saved to {settings.home / 'demo-credentials.json'}; they are shown only once)\n\n"
        )
    config = uvicorn.Config(
        "scimledger.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level="info",
        access_log=False,
    )
    if args.workers <= 1:
        uvicorn.Server(config).run()
        return 0
    from uvicorn.supervisors import Multiprocess

    # uvicorn's own shared socket is created with proto 0, so asyncio never sets TCP_NODELAY on its
    # connections and each keep-alive response waits ~40 ms (uvicorn issue #3149): bind it ourselves.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    sock.bind((args.host, args.port))
    sock.set_inheritable(True)
    Multiprocess(config, sockets=[sock]).run()
    return 0


def cmd_migrate(args: argparse.Namespace, settings: Settings) -> int:
    """Apply schema.sql as the owner (``SCIMLEDGER_MIGRATE_URL``, else ``DATABASE_URL``)."""

    async def noop(store: EventStore) -> None:
        return None

    _with_store(Settings(settings.home, settings.public_url, settings.migrate_url), noop)
    _print({"migrated": True})
    return 0


def cmd_workspace_create(args: argparse.Namespace, settings: Settings) -> int:
    command = handlers.CreateWorkspace(
        name=args.name,
        domains=tuple(args.domain or ()),
        seats=args.seats,
        automatic_seat_assignment=args.auto_seats,
    )

    async def work(store: EventStore) -> handlers.WorkspaceCreated:
        return await handlers.create_workspace(store, command, _cli_metadata())

    created = _with_store(settings, work)
    _print({"workspace_id": str(created.workspace_id), "admin_key": created.admin_key})
    return 0


def cmd_token_create(args: argparse.Namespace, settings: Settings) -> int:
    try:
        workspace_id = UUID(args.workspace)
    except ValueError:
        sys.stderr.write(f"error: {args.workspace!r} is not a workspace id\n")
        return 2
    command = handlers.IssueToken(
        workspace_id=workspace_id, name=args.name, scopes=tuple(args.scope or ("scim:read", "scim:write"))
    )

    async def work(store: EventStore) -> handlers.TokenIssued:
        return await handlers.issue_token(store, command, _cli_metadata())

    issued = _with_store(settings, work)
    _print({"token_id": str(issued.token_id), "token": issued.token})
    return 0


def cmd_projections_rebuild(args: argparse.Namespace, settings: Settings) -> int:
    from projections.rebuild import RebuildMismatch, TableDigest, rebuild

    async def work(store: EventStore) -> list[TableDigest]:
        return await rebuild(store.pool, verify=args.verify)

    try:
        digests = _with_store(settings, work)
    except RebuildMismatch as mismatch:
        for d in mismatch.digests:
            sys.stderr.write(f"{'ok  ' if d.equal else 'DIFF'} {d.table} live={d.live} rebuilt={d.rebuilt}\n")
        return 1
    _print(
        {
            "rebuilt": [d.table for d in digests],
            "verified": args.verify,
            "equal": all(d.equal for d in digests),
        }
    )
    return 0


def cmd_audit_verify(args: argparse.Namespace, settings: Settings) -> int:
    """Recompute every workspace's hash chain from the stored bytes (schema.sql, section 1)."""
    from scimledger.chain import ChainReport, verify_all

    async def work(store: EventStore) -> list[ChainReport]:
        return await verify_all(store.pool)

    reports = _with_store(settings, work)
    _print(
        {
            "workspaces": [
                {
                    "workspace_id": str(r.workspace_id),
                    "events": r.events,
                    "ok": r.ok,
                    "broken_at": r.broken_at,
                }
                for r in reports
            ],
            "ok": all(r.ok for r in reports),
        }
    )
    return 0 if all(r.ok for r in reports) else 1


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scimledger", description="Event-sourced SCIM 2.0 provisioning engine")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply schema.sql (idempotent)").set_defaults(run=cmd_migrate)

    workspace = sub.add_parser("workspace").add_subparsers(dest="action", required=True)
    create = workspace.add_parser("create", help="create a workspace; prints workspace_id and admin_key")
    create.add_argument("--name", required=True)
    create.add_argument("--domain", action="append", help="a verified domain (repeatable)")
    create.add_argument("--seats", type=int, default=0)
    create.add_argument("--auto-seats", action="store_true", help="turn automatic seat assignment on")
    create.set_defaults(run=cmd_workspace_create)

    token = sub.add_parser("token").add_subparsers(dest="action", required=True)
    tcreate = token.add_parser("create", help="issue a SCIM token; prints token_id and token")
    tcreate.add_argument("--workspace", required=True)
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--scope", action="append", choices=["scim:read", "scim:write"])
    tcreate.set_defaults(run=cmd_token_create)

    projections = sub.add_parser("projections").add_subparsers(dest="action", required=True)
    rebuild = projections.add_parser("rebuild", help="rebuild every projection from position 0")
    rebuild.add_argument("--verify", action="store_true", help="exit non-zero unless rebuilt == live")
    rebuild.set_defaults(run=cmd_projections_rebuild)
    audit = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="verify every workspace's hash chain; exit 1 if one is broken")
    verify.set_defaults(run=cmd_audit_verify)
    return p


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings = Settings.from_env()
    try:
        code: int = args.run(args, settings)
    except DomainError as error:
        sys.stderr.write(f"error: {error.message}\n")
        return 2
    except (OSError, asyncpg.PostgresError) as error:
        sys.stderr.write(f"error: {error}\n")
        return 1
    return code


if __name__ == "__main__":
    raise SystemExit(main())
