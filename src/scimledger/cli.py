"""The ``scimledger`` command line (a contract other tools depend on; see README "CLI").

Every command honours ``DATABASE_URL`` and ``SCIMLEDGER_HOME`` (found from any directory, see ``config``);
without ``DATABASE_URL`` it finds and shares the embedded PostgreSQL, which only ``serve`` creates. A bad
setting or an unreachable database is one line naming the setting, and a non-zero exit (2 for a usage or
configuration error, 1 when something could not be done).
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import socket
import ssl
import sys
from collections.abc import Callable
from importlib.metadata import PackageNotFoundError, version
from typing import Any, NoReturn
from uuid import UUID

import asyncpg

from scimledger import admin_key_cli, credentials, domain_cli, handlers, person_cli, pg
from scimledger.cli_common import (
    DatabaseUnavailable,
    _cli_metadata,
    _print,
    _usage,
    _with_store,
    check_environment,
    database_setting,
    reason,
)
from scimledger.config import (
    HOME_VARIABLE,
    ConfigError,
    HomeLocation,
    HomeNotFound,
    Settings,
    locate_home,
    record_file,
    record_home,
)
from scimledger.domain.errors import DomainError
from scimledger.domain.workspace import MAX_SEATS_ADDED
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
    credentials.save_demo(settings.home, demo)
    return demo


def check_tls(args: argparse.Namespace) -> None:
    """``--ssl-certfile``/``--ssl-keyfile`` load as a certificate and its key, before anything starts."""
    if args.ssl_keyfile and not args.ssl_certfile:
        raise ConfigError("--ssl-keyfile", "needs --ssl-certfile")
    if not args.ssl_certfile:
        return
    for option, path in (("--ssl-certfile", args.ssl_certfile), ("--ssl-keyfile", args.ssl_keyfile)):
        try:
            if path:
                with open(path, "rb"):
                    pass
        except OSError as error:
            raise ConfigError(option, f"cannot read {path}: {error.strerror}") from None
    try:
        ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER).load_cert_chain(args.ssl_certfile, args.ssl_keyfile)
    except ssl.SSLError as error:
        raise ConfigError(
            "--ssl-certfile/--ssl-keyfile",
            f"not a PEM certificate and its private key ({error.reason or error})",
        ) from None


def remember_home(location: HomeLocation) -> bool:
    """Record the default data directory for the commands run elsewhere (``config``); True when the record
    changed. An unwritable config directory only costs that convenience: one line, and serve goes on."""
    if location.how != "default":
        return False
    try:
        return record_home(location.path)
    except OSError as error:
        sys.stderr.write(f"warning: cannot record the data directory in {record_file()}: {error.strerror}\n")
        return False


def announce(settings: Settings, demo: dict[str, str] | None, recorded: bool) -> None:
    """What the operator needs at start: the first run's credentials (once), else where they are saved."""
    path = credentials.demo_path(settings.home)
    if demo:
        sys.stderr.write(
            "\nFirst run: created a demo workspace "
            "(verified domain example.com, 10 seats, automatic seats).\n"
            f"  workspace id : {demo['workspace_id']}\n"
            f"  SCIM token   : {demo['token']}\n"
            f"  admin key    : {demo['admin_key']}\n"
            f"  (also saved to {path}; they are shown only once)\n\n"
        )
    elif path.exists():
        sys.stderr.write(f"Demo workspace credentials (SCIM token, admin key) are saved in {path}\n")
    if recorded:
        sys.stderr.write(
            f"Data directory {settings.home}, recorded in {record_file()} so that scimledger commands find "
            "it from any directory\n"
        )


def cmd_serve(args: argparse.Namespace, settings: Settings) -> int:
    import uvicorn

    from scimledger import logs, metrics
    from scimledger.api import health
    from scimledger.api import metrics as metrics_api

    # README "Operating it": each raises ConfigError on a value it cannot use, before anything starts
    log_settings, _, _ = logs.LogSettings.from_env(), health.Limits.from_env(), metrics_api.Access.from_env()
    check_tls(args)

    # Migrations and the demo bootstrap run as the schema's owner; the server connects with least privilege
    # (schema.sql, section 7): the embedded default's `scimledger_app`, or DATABASE_URL as given.
    async def prepare(store: EventStore) -> dict[str, str] | None:
        return await bootstrap_demo(store, settings)

    demo = _with_store(settings, prepare, owner=True, create=True)
    url = settings.database_url or pg.ensure_server(settings.home, shared=True).app_url()
    recorded = remember_home(args.home_location)
    os.environ["DATABASE_URL"] = url  # workers reuse this server instead of starting their own
    os.environ["SCIMLEDGER_HOME"] = str(settings.home)  # ... and this data directory
    os.environ["SCIMLEDGER_WORKERS"] = str(args.workers)  # rate limits are divided among the workers
    announce(settings, demo, recorded)
    metrics.prepare_multiprocess(args.workers)  # every worker's metrics in one scrape
    config = uvicorn.Config(
        "scimledger.app:create_app",
        factory=True,
        host=args.host,
        port=args.port,
        workers=args.workers,
        log_level=log_settings.level,
        log_config=log_settings.dict_config(),
        access_log=False,
        ssl_certfile=args.ssl_certfile,
        ssl_keyfile=args.ssl_keyfile,
        proxy_headers=args.proxy_headers,
        forwarded_allow_ips=args.forwarded_allow_ips,
    )
    if args.workers <= 1:
        uvicorn.Server(config).run()
        return 0
    from uvicorn.supervisors import Multiprocess

    # uvicorn's own shared socket is created with proto 0, so asyncio never sets TCP_NODELAY on its
    # connections and each keep-alive response waits ~40 ms (uvicorn issue #3149): bind it ourselves.
    sock = socket.socket(socket.AF_INET, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    try:
        sock.bind((args.host, args.port))
    except OSError as error:
        sock.close()
        raise ConfigError(
            "--host/--port", f"cannot listen on {args.host}:{args.port}: {reason(error)}"
        ) from None
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

    _with_store(settings, noop, owner=True)
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
    need_signing_home(args)
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

    need_signing_home(args)
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


def need_signing_home(args: argparse.Namespace) -> None:
    """The signing key is made under SCIMLEDGER_HOME on first use: never in a directory found by chance
    (HomeNotFound when there is no data directory and no ``SCIMLEDGER_SIGNING_KEY``). A SCIMLEDGER_HOME the
    operator set is where they will look again: made when missing (with DATABASE_URL it holds only keys)."""
    from scimledger.audit import checkpoint

    location: HomeLocation = args.home_location
    if location.found or os.environ.get(checkpoint.KEY_ENV):
        return
    if location.how == HOME_VARIABLE and os.environ.get("DATABASE_URL"):
        location.path.mkdir(parents=True, exist_ok=True, mode=0o700)
        return
    raise HomeNotFound(location.looked)


ENVIRONMENT = {
    "DATABASE_URL": "the PostgreSQL to use (default: the embedded server under SCIMLEDGER_HOME)",
    "SCIMLEDGER_MIGRATE_URL": "the schema owner's URL, for migrations (default: DATABASE_URL)",
    "SCIMLEDGER_HOME": "the data directory (default: ./.scimledger when it exists, else the one `scimledger "
    "serve` recorded in $XDG_CONFIG_HOME/scimledger/home)",
    "SCIMLEDGER_PUBLIC_URL": "absolute base URL for meta.location (default: from each request)",
    "SCIMLEDGER_SECRET": "cursor signing key shared by every worker (default: derived from the database)",
    "SCIMLEDGER_SMTP_URL": "smtp://host:port to mail notifications (default: none; written to the Maildir "
    "SCIMLEDGER_HOME/outbox)",
    "SCIMLEDGER_MAIL_FROM": "the notifications' sender (default: scimledger@localhost)",
    "SCIMLEDGER_SIGNING_KEY": "checkpoint signing key, PEM text or a file (default: SCIMLEDGER_HOME/"
    "signing-key.pem, made on first use)",
    "SCIMLEDGER_RATE_LIMIT": "requests per credential, RATE/s,BURST (default: 100/s,1000; 0 = off)",
    "SCIMLEDGER_AUTH_FAILURE_LIMIT": "failed authentications per client address (default: 1/s,20)",
    "SCIMLEDGER_DNS_SERVERS": "DNS servers for domain proofs, host[:port],... (default: the system's)",
    "SCIMLEDGER_LOG_FORMAT": "text or json (default: text)",
    "SCIMLEDGER_LOG_LEVEL": "debug, info, warning, error or critical (default: info)",
    "SCIMLEDGER_MASTER_KEY": "master key of personal data, base64 of 32 bytes (default: SCIMLEDGER_HOME/"
    "master-key, made on first use)",
    "SCIMLEDGER_METRICS": "'open' serves /metrics without a token (default: unset)",
    "SCIMLEDGER_METRICS_TOKEN": "bearer token for /metrics (default: unset)",
    "SCIMLEDGER_READY_MAX_OUTBOX_LAG": "/readyz fails above this many unsent notifications (default: 1000; "
    "0 = off)",
    "SCIMLEDGER_READY_MAX_OUTBOX_AGE": "/readyz fails when the oldest unsent notification is older, in "
    "seconds (default: 600; 0 = off)",
    "FORWARDED_ALLOW_IPS": "default of --forwarded-allow-ips (default: 127.0.0.1)",
    "XDG_CONFIG_HOME": "where serve records SCIMLEDGER_HOME (default: ~/.config)",
}
DATABASE = ("DATABASE_URL", "SCIMLEDGER_HOME", "SCIMLEDGER_MASTER_KEY")
OWNER = ("DATABASE_URL", "SCIMLEDGER_MIGRATE_URL", "SCIMLEDGER_HOME", "SCIMLEDGER_MASTER_KEY")
SERVE_HOME = (
    "the data directory (default: ./.scimledger, created on the first run and recorded in "
    "$XDG_CONFIG_HOME/scimledger/home for the other commands)"
)


def documented(*names: str, serve: bool = False) -> dict[str, Any]:
    """Parser options: the environment variables a command reads, listed after its options."""
    lines = ["environment:"]
    for name in names:
        text = SERVE_HOME if serve and name == "SCIMLEDGER_HOME" else ENVIRONMENT[name]
        lines.append(f"  {name:<30} {text}")
    return {"epilog": "\n".join(lines), "formatter_class": argparse.RawDescriptionHelpFormatter}


class Parser(argparse.ArgumentParser):
    """A usage error is one line naming the option, not a usage block (README "CLI")."""

    def error(self, message: str) -> NoReturn:
        self.exit(2, f"error: {self.prog}: {message} (see {self.prog} --help)\n")


def whole_number(low: int, high: int, what: str) -> Callable[[str], int]:
    """An argparse type: an integer from ``low`` to ``high`` (``what`` names it in the error)."""

    def parse(text: str) -> int:
        try:
            value = int(text)
        except ValueError:
            raise argparse.ArgumentTypeError(f"{text!r} is not a whole number") from None
        if not low <= value <= high:
            raise argparse.ArgumentTypeError(f"{value} is out of range: {what} must be from {low} to {high}")
        return value

    return parse


def package_version() -> str:
    try:
        return version("scimledger")
    except PackageNotFoundError:  # run from a checkout that is not installed
        return "unknown"


def parser() -> argparse.ArgumentParser:
    p = Parser(
        prog="scimledger",
        description="Event-sourced SCIM 2.0 provisioning engine",
        **documented(*ENVIRONMENT),
    )
    p.add_argument("--version", action="version", version=f"scimledger {package_version()}")
    sub = p.add_subparsers(dest="command", required=True, metavar="COMMAND")

    serve = sub.add_parser(
        "serve",
        help="run the HTTP server (creates the embedded database on the first run)",
        **documented(*ENVIRONMENT, serve=True),
    )
    serve.add_argument("--host", default="127.0.0.1", help="address to listen on (default: 127.0.0.1)")
    serve.add_argument(
        "--port",
        type=whole_number(1, 65535, "a port"),
        default=8000,
        help="port to listen on (default: 8000)",
    )
    serve.add_argument(
        "--workers",
        type=whole_number(1, 256, "the number of workers"),
        default=1,
        help="worker processes (default: 1)",
    )
    serve.add_argument(
        "--ssl-certfile", metavar="FILE", help="serve HTTPS with this certificate, PEM (default: plain HTTP)"
    )
    serve.add_argument(
        "--ssl-keyfile",
        metavar="FILE",
        help="the certificate's private key, PEM (default: none, the key is in --ssl-certfile)",
    )
    serve.add_argument(
        "--proxy-headers",
        action=argparse.BooleanOptionalAction,
        default=True,
        help="trust X-Forwarded-Proto and X-Forwarded-For from --forwarded-allow-ips (default: on)",
    )
    serve.add_argument(
        "--forwarded-allow-ips",
        metavar="IPS",
        default=os.environ.get("FORWARDED_ALLOW_IPS") or "127.0.0.1",
        help="comma-separated addresses or networks of trusted proxies, or '*' "
        "(default: $FORWARDED_ALLOW_IPS, else 127.0.0.1)",
    )
    serve.set_defaults(run=cmd_serve)

    sub.add_parser("migrate", help="apply schema.sql (idempotent)", **documented(*OWNER)).set_defaults(
        run=cmd_migrate
    )
    sub.add_parser(
        "database-url",
        help='print the database URL the commands use (psql "$(scimledger database-url)")',
        **documented(*OWNER),
    ).set_defaults(run=cmd_database_url)

    workspace = sub.add_parser("workspace", help="create a workspace", **documented(*DATABASE))
    create = workspace.add_subparsers(dest="action", required=True).add_parser(
        "create", help="create a workspace; prints workspace_id and admin_key", **documented(*DATABASE)
    )
    create.add_argument("--name", required=True, help="the workspace's name (required)")
    create.add_argument(
        "--domain", action="append", help="a domain, verified on your word; repeatable (default: none)"
    )
    create.add_argument(
        "--seats",
        type=whole_number(0, MAX_SEATS_ADDED, "seats"),
        default=0,
        help="seats to start with (default: 0)",
    )
    create.add_argument(
        "--auto-seats", action="store_true", help="turn automatic seat assignment on (default: off)"
    )
    create.set_defaults(run=cmd_workspace_create)

    token = sub.add_parser("token", help="issue a SCIM token", **documented(*DATABASE))
    tcreate = token.add_subparsers(dest="action", required=True).add_parser(
        "create", help="issue a SCIM token; prints token_id and token", **documented(*DATABASE)
    )
    tcreate.add_argument("--workspace", required=True, help="the workspace's id (required)")
    tcreate.add_argument("--name", required=True, help="the token's name (required)")
    tcreate.add_argument(
        "--scope",
        action="append",
        choices=["scim:read", "scim:write"],
        help="repeatable (default: both scim:read and scim:write)",
    )
    tcreate.set_defaults(run=cmd_token_create)

    admin_key_cli.register(sub, **documented(*DATABASE))
    domain_cli.register(sub, **documented(*DATABASE, "SCIMLEDGER_DNS_SERVERS"))
    person_cli.register(sub, **documented(*DATABASE))

    projections = sub.add_parser("projections", help="rebuild the read models", **documented(*DATABASE))
    rebuild = projections.add_subparsers(dest="action", required=True).add_parser(
        "rebuild", help="rebuild every projection from position 0", **documented(*DATABASE)
    )
    rebuild.add_argument(
        "--verify", action="store_true", help="exit non-zero unless rebuilt == live (default: off)"
    )
    rebuild.set_defaults(run=cmd_projections_rebuild)

    verifying = (*DATABASE, "SCIMLEDGER_SIGNING_KEY")
    audit = sub.add_parser("audit", help="verify, sign and export the log", **documented(*verifying))
    audits = audit.add_subparsers(dest="action", required=True)
    verify = audits.add_parser(
        "verify",
        help="verify hash chains (and a checkpoint); exit 1 if one is broken or there is nothing to verify",
        **documented(*verifying),
    )
    verify.add_argument("--workspace", help="only this workspace (default: every workspace)")
    verify.add_argument(
        "--checkpoint",
        metavar="FILE",
        help="also prove the log still extends this checkpoint (default: none)",
    )
    verify.add_argument(
        "--public-key",
        metavar="FILE",
        help="PEM that verifies the checkpoint (default: the public half of the signing key)",
    )
    verify.add_argument(
        "--file", metavar="FILE", help="an NDJSON export to verify, with no database (default: the database)"
    )
    verify.set_defaults(run=cmd_audit_verify)
    checkpoint = audits.add_parser(
        "checkpoint", help="sign a checkpoint of a workspace's current head", **documented(*verifying)
    )
    checkpoint.add_argument("--workspace", required=True, help="the workspace's id (required)")
    checkpoint.add_argument(
        "--output", metavar="FILE", help="also write the checkpoint to FILE (default: stdout only)"
    )
    checkpoint.set_defaults(run=cmd_audit_checkpoint)
    public_key = audits.add_parser(
        "public-key",
        help="print the public key that verifies checkpoints",
        **documented("SCIMLEDGER_HOME", "SCIMLEDGER_SIGNING_KEY"),
    )
    public_key.add_argument(
        "--output", metavar="FILE", help="also write the key to FILE, PEM (default: stdout only)"
    )
    public_key.set_defaults(run=cmd_audit_public_key)
    aexport = audits.add_parser(
        "export", help="write a workspace's events as NDJSON or CSV", **documented(*DATABASE)
    )
    aexport.add_argument("--workspace", required=True, help="the workspace's id (required)")
    aexport.add_argument("--format", choices=["ndjson", "csv"], default="ndjson", help="(default: ndjson)")
    aexport.add_argument("--since", help="RFC 3339 time, inclusive (default: the first event)")
    aexport.add_argument("--until", help="RFC 3339 time, exclusive (default: the head of the log)")
    aexport.add_argument("--output", metavar="FILE", help="write to FILE (default: stdout)")
    aexport.set_defaults(run=cmd_audit_export)

    replay = sub.add_parser(
        "replay", help="rebuild a workspace's read model as of a time into a schema", **documented(*OWNER)
    )
    replay.add_argument("--workspace", required=True, help="the workspace's id (required)")
    replay.add_argument("--until", help="RFC 3339 time (default: the head of the log)")
    replay.add_argument(
        "--into", required=True, metavar="SCHEMA", help="a new schema, e.g. audit_2026_03 (required)"
    )
    replay.add_argument(
        "--replace", action="store_true", help="drop and rebuild an earlier replay's schema (default: off)"
    )
    replay.set_defaults(run=cmd_replay)
    return p


def no_database(location: HomeLocation, missing: pg.NoEmbeddedData) -> ConfigError:
    """Defect 3: a command other than ``serve`` never makes a database; it says where it looked."""
    if not location.found:
        return HomeNotFound(location.looked)
    how = {"SCIMLEDGER_HOME": "from SCIMLEDGER_HOME", "current directory": "in the current directory"}
    found = how.get(location.how, f"recorded in {record_file()}")
    return ConfigError(
        "SCIMLEDGER_HOME",
        f"{missing.home} ({found}) holds no scimledger database; `scimledger serve` creates it there, "
        "or set DATABASE_URL",
    )


def _fail(message: str, code: int) -> int:
    sys.stderr.write(f"error: {message}\n")
    return code


def main(argv: list[str] | None = None) -> int:
    args = parser().parse_args(argv)
    settings: Settings | None = None
    try:
        check_environment()
        args.home_location = location = locate_home(serving=args.command == "serve")
        if location.found or args.command == "serve":  # every module reading it uses the one found here
            os.environ["SCIMLEDGER_HOME"] = str(location.path)
        settings = Settings.from_env(home=location.path)
        code: int = args.run(args, settings)
    except pg.NoEmbeddedData as missing:
        return _fail(str(no_database(location, missing)), 1)
    except DatabaseUnavailable as error:
        return _fail(str(error), 1)
    except ConfigError as error:
        return _fail(str(error), 2)
    except DomainError as error:
        return _fail(error.message, 2)
    except KeyboardInterrupt:
        return 130
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        connecting = isinstance(error, ConnectionError | socket.gaierror) or "Connect call failed" in str(
            error
        )
        if connecting and settings is not None:
            return _fail(f"{database_setting(settings)}: cannot connect to PostgreSQL: {reason(error)}", 1)
        return _fail(str(error), 1)
    except RuntimeError as error:  # the embedded server did not start (its log is named)
        return _fail(str(error), 1)
    return code


if __name__ == "__main__":
    raise SystemExit(main())
