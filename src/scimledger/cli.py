"""The ``scimledger`` command line (a contract other tools depend on; see README "CLI").

Every command honours ``DATABASE_URL`` and ``SCIMLEDGER_HOME``; without ``DATABASE_URL`` it starts (or finds
and reuses) the embedded PostgreSQL.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import sys
from typing import Any
from uuid import UUID

import asyncpg

from scimledger import domain_cli, handlers, pg
from scimledger.cli_common import _cli_metadata, _print, _usage, _with_store
from scimledger.config import Settings
from scimledger.domain.errors import DomainError
from scimledger.store.event_store import EventStore, Metadata


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
    # (schema.sql, section 7): the embedded default's `scimledger_app`, or DATABASE_URL as given.
    owner_url = settings.migrate_url or pg.resolve_database_url(settings.home)

    async def prepare(store: EventStore) -> dict[str, str] | None:
        return await bootstrap_demo(store, settings)

    demo = _with_store(Settings(settings.home, settings.public_url, owner_url), prepare)
    url = settings.database_url or pg.ensure_server(settings.home).app_url()
    os.environ["DATABASE_URL"] = url  # workers reuse this server instead of starting their own
    os.environ["SCIMLEDGER_WORKERS"] = str(args.workers)  # rate limits are divided among the workers
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


def cmd_database_url(args: argparse.Namespace, settings: Settings) -> int:
    """Print the owner's database URL (the embedded server's, started or found), e.g. for
    ``psql "$(scimledger database-url)"`` in the README's auditor walkthrough."""
    sys.stdout.write((settings.migrate_url or pg.resolve_database_url(settings.home)) + "\n")
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
    """Recompute hash chains from the stored bytes (schema.sql, section 1): the database's, or with --file
    an exported NDJSON file's with no database at all; with --checkpoint also prove the log still extends
    a signed checkpoint. Exit 0 verified, 1 broken or nothing to verify, 2 usage (issue 7)."""
    from pathlib import Path

    from scimledger import chain
    from scimledger.audit import checkpoint, offline

    try:
        workspace_id = UUID(args.workspace) if args.workspace else None
    except ValueError:
        return _usage(f"{args.workspace!r} is not a workspace id")
    if args.public_key and not args.checkpoint:
        return _usage("--public-key is only used with --checkpoint")
    signed = None
    if args.checkpoint:
        try:
            signed = checkpoint.loads(Path(args.checkpoint).read_bytes())
            public = (
                checkpoint.public_key_from_pem(Path(args.public_key).read_bytes(), args.public_key)
                if args.public_key
                else checkpoint.existing_public_key(settings.home)
            )
        except (OSError, checkpoint.MalformedCheckpoint, checkpoint.KeyUnavailable) as error:
            return _usage(f"{args.checkpoint}: {error}" if isinstance(error, ValueError) else str(error))
        if public is None:
            return _usage("no signing key under SCIMLEDGER_HOME: pass the public key with --public-key FILE")
        if workspace_id is not None and signed.workspace_id != workspace_id:
            return _usage("the checkpoint is of another workspace than --workspace")
        try:
            checkpoint.check_signature(signed, public)
        except checkpoint.CheckpointRefused as refused:
            sys.stderr.write(f"broken: {checkpoint.SIGNATURE_INVALID}: {refused}\n")
            _print(
                {
                    "workspaces": [],
                    "ok": False,
                    "reason": checkpoint.SIGNATURE_INVALID,
                    "detail": str(refused),
                }
            )
            return 1
    anchors = {signed.workspace_id: signed.anchor()} if signed else {}

    if args.file:
        try:
            reports = offline.verify_file(Path(args.file), anchors)
        except OSError as error:
            return _usage(f"cannot read {args.file}: {error.strerror}")
        except offline.InvalidExport as invalid:
            sys.stderr.write(f"broken: {invalid}\n")
            _print({"workspaces": [], "ok": False, "reason": "invalid record", "detail": str(invalid)})
            return 1
    else:

        async def work(store: EventStore) -> list[chain.ChainReport]:
            if workspace_id is not None:
                return [await chain.verify_workspace(store.pool, workspace_id, anchors.get(workspace_id))]
            return await chain.verify_all(store.pool, anchors)

        reports = _with_store(settings, work)
    if workspace_id is not None:
        reports = [r for r in reports if r.workspace_id == workspace_id] or [
            chain.ChainWalk(workspace_id).report()
        ]
    ok = bool(reports) and all(r.ok for r in reports)
    result: dict[str, Any] = {"workspaces": [r.as_dict() for r in reports], "ok": ok}
    if not reports:  # an auditor never gets a green result for nothing
        result.update(reason=chain.NO_EVENTS, detail="the log has no events")
    if signed is not None:
        extended = next(r.ok for r in reports if r.workspace_id == signed.workspace_id)
        result["checkpoint"] = {**signed.as_dict(), "signature_valid": True, "extended": extended}
    for r in reports:
        if not r.ok:
            where = f" at position {r.broken_at}" if r.broken_at is not None else ""
            sys.stderr.write(f"broken: workspace {r.workspace_id}{where}: {r.reason} ({r.detail})\n")
    if not reports:
        sys.stderr.write("broken: the log has no events: nothing was verified\n")
    _print(result)
    return 0 if ok else 1


def cmd_audit_checkpoint(args: argparse.Namespace, settings: Settings) -> int:
    """Sign a checkpoint of a workspace's current head with the key kept outside the database (issue 7)."""
    from pathlib import Path

    from scimledger.audit import checkpoint

    try:
        workspace_id = UUID(args.workspace)
    except ValueError:
        return _usage(f"{args.workspace!r} is not a workspace id")
    try:
        key = checkpoint.signing_key(settings.home)
    except checkpoint.KeyUnavailable as error:
        return _usage(str(error))

    async def work(store: EventStore) -> checkpoint.Checkpoint | None:
        return await checkpoint.checkpoint_now(store.pool, key, workspace_id)

    made = _with_store(settings, work)
    if made is None:
        sys.stderr.write(f"error: workspace {workspace_id} has no events: nothing to sign\n")
        return 1
    if args.output:
        Path(args.output).write_text(json.dumps(made.as_dict(), indent=2) + "\n")
    _print(made.as_dict())
    return 0


def cmd_audit_public_key(args: argparse.Namespace, settings: Settings) -> int:
    """Print (and with --output write, as PEM) the public key that verifies checkpoints; no database."""
    from pathlib import Path

    from scimledger.audit import checkpoint

    try:
        key = checkpoint.signing_key(settings.home)
    except checkpoint.KeyUnavailable as error:
        return _usage(str(error))
    document = checkpoint.public_key_document(key.public_key())
    if args.output:
        Path(args.output).write_text(document["public_key_pem"])
    _print(document)
    return 0


def cmd_audit_export(args: argparse.Namespace, settings: Settings) -> int:
    """A workspace's events as NDJSON or CSV: the bytes of ``GET /api/v1/audit/export`` (issue 7)."""
    from scimledger.audit import export
    from scimledger.audit.log_query import BadFilter, parse_time

    try:
        workspace_id = UUID(args.workspace)
    except ValueError:
        return _usage(f"{args.workspace!r} is not a workspace id")
    try:
        since = parse_time("--since", args.since) if args.since else None
        until = parse_time("--until", args.until) if args.until else None
    except BadFilter as error:
        return _usage(str(error))
    if since is not None and until is not None and since > until:
        return _usage("--since must not be later than --until")
    selected = export.ExportRange(workspace_id, since, until)
    with export.output(args.output) as out:

        async def work(store: EventStore) -> int:
            return await export.write(store.pool, selected, args.format, out)

        written = _with_store(settings, work)
    if args.output:
        summary = {"workspace_id": str(workspace_id), "format": args.format, "events": written}
        _print({**summary, "output": args.output})
    return 0


def cmd_replay(args: argparse.Namespace, settings: Settings) -> int:
    """One workspace's read model as of --until, rebuilt into its own schema (issue 7, "Replay"); runs as
    the owner (it creates a schema), like ``migrate``."""
    from scimledger.audit.replay import ReplayError, check_schema_name, parse_until, replay
    from scimledger.progress import Progress

    bar = Progress("replay", None)

    def report(done: int, total: int) -> None:
        bar.total = total
        bar.advance(done - bar.done)

    try:
        workspace_id = UUID(args.workspace)
    except ValueError:
        sys.stderr.write(f"error: {args.workspace!r} is not a workspace id\n")
        return 2
    try:
        check_schema_name(args.into)
        until = parse_until(args.until) if args.until else None
        url = settings.migrate_url or pg.resolve_database_url(settings.home)
        try:
            replaying = replay(
                url, workspace_id, until=until, schema=args.into, replace=args.replace, progress=report
            )
            summary = asyncio.run(replaying)
        finally:
            if bar.total is not None:  # the replay started: end the bar's line before anything else
                bar.close()
    except ReplayError as error:
        sys.stderr.write(f"error: {error}\n")
        return 2
    _print(summary.as_dict())
    return 0


def parser() -> argparse.ArgumentParser:
    p = argparse.ArgumentParser(prog="scimledger", description="Event-sourced SCIM 2.0 provisioning engine")
    sub = p.add_subparsers(dest="command", required=True)

    serve = sub.add_parser("serve", help="run the HTTP server")
    serve.add_argument("--host", default="127.0.0.1")
    serve.add_argument("--port", type=int, default=8000)
    serve.add_argument("--workers", type=int, default=1)
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply schema.sql (idempotent)").set_defaults(run=cmd_migrate)
    sub.add_parser(
        "database-url", help='print the database URL the commands use (psql "$(scimledger database-url)")'
    ).set_defaults(run=cmd_database_url)

    workspace = sub.add_parser("workspace").add_subparsers(dest="action", required=True)
    create = workspace.add_parser("create", help="create a workspace; prints workspace_id and admin_key")
    create.add_argument("--name", required=True)
    create.add_argument("--domain", action="append", help="a domain, verified on your word (repeatable)")
    create.add_argument("--seats", type=int, default=0)
    create.add_argument("--auto-seats", action="store_true", help="turn automatic seat assignment on")
    create.set_defaults(run=cmd_workspace_create)

    token = sub.add_parser("token").add_subparsers(dest="action", required=True)
    tcreate = token.add_parser("create", help="issue a SCIM token; prints token_id and token")
    tcreate.add_argument("--workspace", required=True)
    tcreate.add_argument("--name", required=True)
    tcreate.add_argument("--scope", action="append", choices=["scim:read", "scim:write"])
    tcreate.set_defaults(run=cmd_token_create)

    domain_cli.register(sub)

    projections = sub.add_parser("projections").add_subparsers(dest="action", required=True)
    rebuild = projections.add_parser("rebuild", help="rebuild every projection from position 0")
    rebuild.add_argument("--verify", action="store_true", help="exit non-zero unless rebuilt == live")
    rebuild.set_defaults(run=cmd_projections_rebuild)
    audit = sub.add_parser("audit").add_subparsers(dest="action", required=True)
    verify = audit.add_parser("verify", help="verify hash chains (and a checkpoint); exit 1 if one is broken")
    verify.add_argument("--workspace", help="only this workspace (default: every workspace)")
    verify.add_argument(
        "--checkpoint", metavar="FILE", help="also prove the log still extends this checkpoint"
    )
    verify.add_argument(
        "--public-key", metavar="FILE", help="PEM that verifies the checkpoint (default: own key)"
    )
    verify.add_argument("--file", metavar="FILE", help="an NDJSON export to verify, with no database")
    verify.set_defaults(run=cmd_audit_verify)
    checkpoint = audit.add_parser("checkpoint", help="sign a checkpoint of a workspace's current head")
    checkpoint.add_argument("--workspace", required=True)
    checkpoint.add_argument("--output", metavar="FILE", help="also write the checkpoint to FILE")
    checkpoint.set_defaults(run=cmd_audit_checkpoint)
    public_key = audit.add_parser("public-key", help="print the public key that verifies checkpoints")
    public_key.add_argument("--output", metavar="FILE", help="also write the key to FILE (PEM)")
    public_key.set_defaults(run=cmd_audit_public_key)
    aexport = audit.add_parser("export", help="write a workspace's events as NDJSON or CSV")
    aexport.add_argument("--workspace", required=True)
    aexport.add_argument("--format", choices=["ndjson", "csv"], default="ndjson")
    aexport.add_argument("--since", help="RFC 3339 time, inclusive")
    aexport.add_argument("--until", help="RFC 3339 time, exclusive")
    aexport.add_argument("--output", metavar="FILE", help="write to FILE (default: stdout)")
    aexport.set_defaults(run=cmd_audit_export)
    replay = sub.add_parser("replay", help="rebuild a workspace's read model as of a time into a schema")
    replay.add_argument("--workspace", required=True)
    replay.add_argument("--until", help="RFC 3339 time (default: the head of the log)")
    replay.add_argument("--into", required=True, metavar="SCHEMA", help="a new schema, e.g. audit_2026_03")
    replay.add_argument("--replace", action="store_true", help="drop and rebuild an earlier replay's schema")
    replay.set_defaults(run=cmd_replay)
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
