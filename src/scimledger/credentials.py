"""Bearer secrets: SCIM tokens and admin keys (seed 004).

A secret is ``<prefix>_<43 chars of base62 randomness (256 bits)><6 chars base62 CRC32>``: recognisable by
its prefix (secret scanners), checkable offline by its checksum, stored only as a SHA-256 hash and compared
through that hash (a lookup by hash of a high-entropy secret leaks nothing usable by timing).
"""

from __future__ import annotations

import hashlib
import hmac
import json
import os
import secrets
import zlib
from pathlib import Path

SCIM_TOKEN_PREFIX = "sltok"
ADMIN_KEY_PREFIX = "slkey"
_ALPHABET = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
_BODY_LENGTH = 43
_CHECK_LENGTH = 6


def _base62(number: int, length: int) -> str:
    chars = []
    for _ in range(length):
        number, digit = divmod(number, 62)
        chars.append(_ALPHABET[digit])
    return "".join(reversed(chars))


def _checksum(body: str) -> str:
    return _base62(zlib.crc32(body.encode()), _CHECK_LENGTH)


def generate(prefix: str) -> str:
    """A new random secret with ``prefix`` and checksum."""
    body = _base62(secrets.randbits(256), _BODY_LENGTH)
    return f"{prefix}_{body}{_checksum(body)}"


def well_formed(secret: str, prefix: str) -> bool:
    """Prefix, length, alphabet and checksum are right (no database round trip for garbage)."""
    head, sep, rest = secret.partition("_")
    if head != prefix or not sep or len(rest) != _BODY_LENGTH + _CHECK_LENGTH:
        return False
    if not (rest.isascii() and rest.isalnum()):  # the base62 alphabet, _ALPHABET
        return False
    body, check = rest[:_BODY_LENGTH], rest[_BODY_LENGTH:]
    return hmac.compare_digest(_checksum(body), check)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()


DEMO_FILE = "demo-credentials.json"


def demo_path(home: Path) -> Path:
    """Where the first run keeps the demo workspace's id, SCIM token and admin key (README "Two commands")."""
    return home / DEMO_FILE


def save_demo(home: Path, demo: dict[str, str]) -> Path:
    """Write the demo credentials readable by their owner only (mode 0600 from the start)."""
    home.mkdir(parents=True, exist_ok=True)
    path = demo_path(home)
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as out:
        out.write(json.dumps(demo, indent=2) + "\n")
    path.chmod(0o600)
    return path
