"""Runtime settings, read from the environment once at start-up, and where the data directory is (README
"CLI", "Configuration").

The data directory (``SCIMLEDGER_HOME``) is found the same way from any directory: ``SCIMLEDGER_HOME`` when
set; otherwise ``.scimledger`` in the current directory when it exists; otherwise the absolute path that
``scimledger serve`` recorded in ``$XDG_CONFIG_HOME/scimledger/home`` (``~/.config/scimledger/home``) the last
time it started with the default. Only ``serve`` creates a data directory (and its database); the other
commands say where they looked instead.
"""

from __future__ import annotations

import hashlib
import os
from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

HOME_VARIABLE = "SCIMLEDGER_HOME"
DEFAULT_HOME = ".scimledger"


class ConfigError(Exception):
    """A setting has a value the server cannot use; ``setting`` names it (an environment variable or an
    option), so the CLI prints one line instead of a traceback."""

    def __init__(self, setting: str, problem: str) -> None:
        super().__init__(f"{setting}: {problem}")
        self.setting = setting
        self.problem = problem


class HomeNotFound(ConfigError):
    """No data directory where the commands look for one (``looked`` says where, in order)."""

    def __init__(self, looked: str) -> None:
        super().__init__(
            HOME_VARIABLE,
            f"no scimledger data directory found ({looked}); start the server once with `scimledger serve` "
            "(or `make run`) in the project directory, or set SCIMLEDGER_HOME or DATABASE_URL",
        )
        self.looked = looked


def record_file(environ: Mapping[str, str] = os.environ) -> Path:
    """Where ``serve`` records its data directory: ``$XDG_CONFIG_HOME/scimledger/home`` (XDG Base Directory:
    a relative ``XDG_CONFIG_HOME`` is ignored), else ``~/.config/scimledger/home``."""
    base = environ.get("XDG_CONFIG_HOME", "")
    root = Path(base) if base and Path(base).is_absolute() else Path.home() / ".config"
    return root / "scimledger" / "home"


def recorded_home(environ: Mapping[str, str] = os.environ) -> Path | None:
    """The data directory ``serve`` recorded, if any."""
    try:
        text = record_file(environ).read_text().strip()
    except OSError:
        return None
    return Path(text) if text and Path(text).is_absolute() else None


def record_home(home: Path, environ: Mapping[str, str] = os.environ) -> bool:
    """Record ``home`` (absolute) for the commands run from other directories; True when it changed."""
    if recorded_home(environ) == home:
        return False
    path = record_file(environ)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".home.{os.getpid()}")
    tmp.write_text(f"{home}\n")
    tmp.replace(path)
    return True


@dataclass(frozen=True)
class HomeLocation:
    """The data directory a command uses and how it was found. ``found`` is False when it does not exist
    anywhere the commands look (``path`` is then the default, which only ``serve`` creates)."""

    path: Path
    how: str  # "SCIMLEDGER_HOME", "default" (serve, current directory), "current directory", "recorded"
    found: bool
    looked: str


def locate_home(
    *, serving: bool, environ: Mapping[str, str] = os.environ, cwd: Path | None = None
) -> HomeLocation:
    """Find the data directory (module docstring); never creates anything."""
    local = (cwd or Path.cwd()) / DEFAULT_HOME
    explicit = environ.get(HOME_VARIABLE)
    if explicit:
        path = Path(explicit).expanduser().absolute()
        return HomeLocation(path, HOME_VARIABLE, path.is_dir(), f"SCIMLEDGER_HOME={path}")
    if serving:
        return HomeLocation(local, "default", local.is_dir(), f"{local} (the current directory)")
    record = record_file(environ)
    recorded = recorded_home(environ)
    looked = f"SCIMLEDGER_HOME is not set, {local} does not exist, " + (
        f"{record} names {recorded}, which does not exist" if recorded else f"{record} does not exist"
    )
    if local.is_dir():
        return HomeLocation(local, "current directory", True, looked)
    if recorded is not None and recorded.is_dir():
        return HomeLocation(recorded, "recorded", True, looked)
    return HomeLocation(local, "none", False, looked)


def check_database_url(setting: str, url: str) -> str:
    """A PostgreSQL URL (``postgresql://user@host:port/database``), else ConfigError naming ``setting``."""
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise ConfigError(setting, f"{url!r} is not a PostgreSQL URL ({error})") from None
    if parts.scheme not in ("postgresql", "postgres"):
        raise ConfigError(
            setting, f"{url!r} is not a PostgreSQL URL: expected postgresql://user@host:port/database"
        )
    if port == 0:
        raise ConfigError(setting, f"{url!r}: the port must be 1-65535")
    return url


def check_public_url(url: str) -> str:
    """``SCIMLEDGER_PUBLIC_URL``: an absolute http(s) base URL with no query or fragment."""
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises on a bad port
    except ValueError as error:
        raise ConfigError("SCIMLEDGER_PUBLIC_URL", f"{url!r} is not a URL ({error})") from None
    if parts.scheme not in ("http", "https") or not parts.hostname or parts.query or parts.fragment:
        raise ConfigError(
            "SCIMLEDGER_PUBLIC_URL",
            f"{url!r} is not an absolute base URL such as https://scim.example.com",
        )
    return url.rstrip("/")


@dataclass(frozen=True)
class Settings:
    """``SCIMLEDGER_HOME``: data directory of the embedded server (found as the module docstring says).
    ``SCIMLEDGER_PUBLIC_URL``: absolute base URL for ``meta.location`` (default: from the request).
    ``DATABASE_URL``: an existing PostgreSQL to use instead of the embedded one.
    ``SCIMLEDGER_MIGRATE_URL``: the schema owner's URL for migrations (default: ``DATABASE_URL``), so that
    ``DATABASE_URL`` can name a least-privilege role (README, "Least privilege")."""

    home: Path
    public_url: str | None
    database_url: str | None
    migrate_database_url: str | None = None

    @property
    def migrate_url(self) -> str | None:
        return self.migrate_database_url or self.database_url

    @classmethod
    def from_env(cls, home: Path | None = None) -> Settings:
        """``home``: the data directory the CLI located; else ``SCIMLEDGER_HOME`` or ``./.scimledger``."""
        return cls(
            home=home or Path(os.environ.get(HOME_VARIABLE) or DEFAULT_HOME).absolute(),
            public_url=(os.environ.get("SCIMLEDGER_PUBLIC_URL") or "").rstrip("/") or None,
            database_url=os.environ.get("DATABASE_URL") or None,
            migrate_database_url=os.environ.get("SCIMLEDGER_MIGRATE_URL") or None,
        )

    def cursor_secret(self) -> bytes:
        """Key for RFC 9865 cursors, shared by every worker: ``SCIMLEDGER_SECRET`` or derived from the
        database location (cursors only carry positions within the caller's own workspace)."""
        configured = os.environ.get("SCIMLEDGER_SECRET")
        if configured:
            return configured.encode()
        return hashlib.sha256(
            f"scimledger-cursor|{self.database_url}|{self.home.resolve()}".encode()
        ).digest()
