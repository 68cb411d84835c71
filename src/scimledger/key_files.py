"""Secret files made on first use under the data directory (the checkpoint signing key, the master key):
mode 0600, written whole to a private temporary file and linked into place, so that nobody ever reads a
half-written key and, of two processes making one at once, exactly one key wins."""

from __future__ import annotations

import contextlib
import os
import secrets
from pathlib import Path


def create_once(path: Path, content: bytes) -> None:
    """Write ``content`` to ``path`` (mode 0600) unless it exists or another process got there first."""
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f".{path.name}.{secrets.token_hex(8)}")
    fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        with os.fdopen(fd, "wb") as out:
            out.write(content)
            out.flush()
            os.fsync(out.fileno())
        with contextlib.suppress(FileExistsError):  # made by a concurrent first use: that one is the key
            os.link(temporary, path)
    finally:
        temporary.unlink()
