"""Runtime settings, read from the environment once at start-up."""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass
from pathlib import Path


@dataclass(frozen=True)
class Settings:
    """``SCIMLEDGER_HOME``: data directory of the embedded server (default ``.scimledger``).
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
    def from_env(cls) -> Settings:
        return cls(
            home=Path(os.environ.get("SCIMLEDGER_HOME", ".scimledger")),
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
