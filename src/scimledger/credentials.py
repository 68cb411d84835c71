"""Bearer secrets: SCIM tokens and admin keys (seed 004).

A secret is ``<prefix>_<43 chars of base62 randomness (256 bits)><6 chars base62 CRC32>``: recognisable by
its prefix (secret scanners), checkable offline by its checksum, stored only as a SHA-256 hash and compared
through that hash (a lookup by hash of a high-entropy secret leaks nothing usable by timing).
"""

from __future__ import annotations

import hashlib
import hmac
import secrets
import zlib

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
    if any(c not in _ALPHABET for c in rest):
        return False
    body, check = rest[:_BODY_LENGTH], rest[_BODY_LENGTH:]
    return hmac.compare_digest(_checksum(body), check)


def secret_hash(secret: str) -> bytes:
    return hashlib.sha256(secret.encode()).digest()
