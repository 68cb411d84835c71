"""Signed checkpoints of a workspace's hash chain (issue 7, "Tamper evidence").

A checkpoint says "at ``signed_at`` this workspace's log had ``events`` events and its event at ``position``
had hash ``head_hash``", signed with Ed25519 (RFC 8032) by a key kept outside the database. Whoever holds the
public key can later prove the log still extends it (``chain.Anchor``): a rewrite of history, even with every
hash recomputed, or a truncated tail, no longer reaches ``head_hash``. Signing costs one small query, not a
verification of the chain: the checkpoint attests the head, ``audit verify`` checks what leads to it.

The signature covers the canonical JSON of every field but ``signature``: keys sorted, no whitespace, UTF-8.
``key_id`` is the first 16 hex digits of SHA-256 over the raw 32-byte public key.

The signing key: ``SCIMLEDGER_SIGNING_KEY`` when set, holding either a PEM private key (text starting with
``-----BEGIN``) or the path of a PEM file; otherwise ``signing-key.pem`` under ``SCIMLEDGER_HOME``, made on
first use with mode 0600 (PKCS#8 PEM, unencrypted). It is read once per process (a new key takes a restart),
and never logged, stored in the database or served. Several servers on one database share a key through
``SCIMLEDGER_SIGNING_KEY``; each home otherwise makes its own.
"""

from __future__ import annotations

import base64
import dataclasses
import hashlib
import json
import os
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import lru_cache
from pathlib import Path
from typing import TYPE_CHECKING, Any
from uuid import UUID

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from scimledger import chain, key_files

if TYPE_CHECKING:
    import asyncpg

KEY_ENV = "SCIMLEDGER_SIGNING_KEY"
KEY_FILE = "signing-key.pem"
ALGORITHM = "Ed25519"
SIGNATURE_INVALID = "checkpoint signature invalid"  # a ``reason`` beside those of ``chain``
FIELDS = ("workspace_id", "position", "head_hash", "events", "signed_at", "key_id", "signature")
_HEX64 = re.compile(r"[0-9a-f]{64}")


class KeyUnavailable(Exception):
    """The signing or public key cannot be loaded (the message names where it was looked for)."""


class MalformedCheckpoint(ValueError):
    """The text is not a checkpoint: a field is missing, extra, or not in its canonical form."""


class CheckpointRefused(Exception):
    """The checkpoint's signature does not verify with the public key (altered, or another key's)."""


# --- keys ---------------------------------------------------------------------------------------------------
def key_id(public_key: Ed25519PublicKey) -> str:
    raw = public_key.public_bytes(serialization.Encoding.Raw, serialization.PublicFormat.Raw)
    return hashlib.sha256(raw).hexdigest()[:16]


def public_key_pem(public_key: Ed25519PublicKey) -> str:
    return public_key.public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    ).decode()


def public_key_document(public_key: Ed25519PublicKey) -> dict[str, str]:
    """The body of ``GET /api/v1/audit/public-key``."""
    return {
        "key_id": key_id(public_key),
        "algorithm": ALGORITHM,
        "public_key_pem": public_key_pem(public_key),
    }


def _private_from_pem(pem: bytes, where: str) -> Ed25519PrivateKey:
    try:
        key = serialization.load_pem_private_key(pem, password=None)
    except (ValueError, TypeError) as error:
        raise KeyUnavailable(f"{where} is not an unencrypted PEM private key") from error
    if not isinstance(key, Ed25519PrivateKey):
        raise KeyUnavailable(f"{where} is not an Ed25519 private key")
    return key


def public_key_from_pem(pem: bytes, where: str = "the public key") -> Ed25519PublicKey:
    try:
        key = serialization.load_pem_public_key(pem)
    except (ValueError, TypeError) as error:
        raise KeyUnavailable(f"{where} is not a PEM public key") from error
    if not isinstance(key, Ed25519PublicKey):
        raise KeyUnavailable(f"{where} is not an Ed25519 public key")
    return key


def _read(path: Path, what: str) -> bytes:
    try:
        return path.read_bytes()
    except OSError as error:
        raise KeyUnavailable(f"cannot read {what} {path}: {error.strerror}") from error


def _create_key_file(path: Path) -> None:
    """Write a new key to ``path`` (mode 0600) unless another process got there first: the key is written to
    a private temporary file and linked into place, so nobody ever reads a half-written key."""
    pem = Ed25519PrivateKey.generate().private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    key_files.create_once(path, pem)


@lru_cache(maxsize=8)
def _signing_key(configured: str | None, home_key: str) -> Ed25519PrivateKey:
    if configured:
        if configured.lstrip().startswith("-----BEGIN"):
            return _private_from_pem(configured.encode(), KEY_ENV)
        path = Path(configured)
        return _private_from_pem(_read(path, f"{KEY_ENV} file"), f"{KEY_ENV} file {path}")
    path = Path(home_key)
    if not path.exists():
        _create_key_file(path)
    return _private_from_pem(_read(path, "the signing key"), f"the signing key {path}")


def signing_key(home: Path, environ: Mapping[str, str] = os.environ) -> Ed25519PrivateKey:
    """The signing key (see the module docstring), made under ``home`` on first use when none is set."""
    return _signing_key(environ.get(KEY_ENV) or None, str((home / KEY_FILE).resolve()))


def existing_public_key(home: Path, environ: Mapping[str, str] = os.environ) -> Ed25519PublicKey | None:
    """The public half of the configured signing key, or None when there is none yet (never makes one)."""
    if not environ.get(KEY_ENV) and not (home / KEY_FILE).exists():
        return None
    return signing_key(home, environ).public_key()


# --- checkpoints --------------------------------------------------------------------------------------------
def canonical(claims: Mapping[str, Any]) -> bytes:
    """The signed bytes: JSON with sorted keys, no whitespace, UTF-8."""
    return json.dumps(claims, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


@dataclass(frozen=True)
class Checkpoint:
    workspace_id: UUID
    position: int
    head_hash: bytes
    events: int
    signed_at: str  # RFC 3339, UTC
    key_id: str
    signature: str  # base64 of the Ed25519 signature over ``canonical(claims())``

    def claims(self) -> dict[str, Any]:
        """Every field but the signature: what the signature covers."""
        return {
            "workspace_id": str(self.workspace_id),
            "position": self.position,
            "head_hash": self.head_hash.hex(),
            "events": self.events,
            "signed_at": self.signed_at,
            "key_id": self.key_id,
        }

    def as_dict(self) -> dict[str, Any]:
        """The checkpoint document (``GET /api/v1/audit/checkpoint``, ``scimledger audit checkpoint``)."""
        return {**self.claims(), "signature": self.signature}

    def anchor(self) -> chain.Anchor:
        return chain.Anchor(position=self.position, head_hash=self.head_hash, events=self.events)


def sign(
    private_key: Ed25519PrivateKey,
    workspace_id: UUID,
    position: int,
    head_hash: bytes,
    events: int,
    signed_at: datetime | None = None,
) -> Checkpoint:
    unsigned = Checkpoint(
        workspace_id=workspace_id,
        position=position,
        head_hash=head_hash,
        events=events,
        signed_at=chain.recorded_at_text(signed_at or datetime.now(UTC)),
        key_id=key_id(private_key.public_key()),
        signature="",
    )
    signature = private_key.sign(canonical(unsigned.claims()))
    return dataclasses.replace(unsigned, signature=base64.b64encode(signature).decode())


def _field(obj: Mapping[str, Any], name: str, kind: type) -> Any:
    value = obj[name]
    if not isinstance(value, kind) or (kind is int and isinstance(value, bool)):
        raise MalformedCheckpoint(f"{name} must be a {kind.__name__}")
    return value


def parse(obj: Any) -> Checkpoint:
    """A checkpoint from its JSON document; every field present, none extra, each in canonical form (so
    ``claims()`` gives back exactly the signed fields). Raises MalformedCheckpoint."""
    if not isinstance(obj, dict):
        raise MalformedCheckpoint("a checkpoint is a JSON object")
    if set(obj) != set(FIELDS):
        raise MalformedCheckpoint(f"a checkpoint has exactly the fields {', '.join(FIELDS)}")
    workspace = _field(obj, "workspace_id", str)
    try:
        workspace_id = UUID(workspace)
    except ValueError:
        raise MalformedCheckpoint("workspace_id must be a uuid") from None
    if str(workspace_id) != workspace:
        raise MalformedCheckpoint("workspace_id must be a lower-case hyphenated uuid")
    head_hash = _field(obj, "head_hash", str)
    if not _HEX64.fullmatch(head_hash):
        raise MalformedCheckpoint("head_hash must be 64 lower-case hex digits")
    position, events = _field(obj, "position", int), _field(obj, "events", int)
    if position < 1 or events < 1:
        raise MalformedCheckpoint("position and events must be positive")
    signed_at = _field(obj, "signed_at", str)
    try:
        datetime.strptime(signed_at, chain.TIMESTAMP_FORMAT)
    except ValueError:
        raise MalformedCheckpoint("signed_at must be RFC 3339 UTC (YYYY-MM-DDTHH:MM:SS.ffffffZ)") from None
    return Checkpoint(
        workspace_id=workspace_id,
        position=position,
        head_hash=bytes.fromhex(head_hash),
        events=events,
        signed_at=signed_at,
        key_id=_field(obj, "key_id", str),
        signature=_field(obj, "signature", str),
    )


def loads(text: str | bytes) -> Checkpoint:
    """A checkpoint from the text of a checkpoint file. Raises MalformedCheckpoint."""
    try:
        obj = json.loads(text)
    except (ValueError, RecursionError):
        raise MalformedCheckpoint("a checkpoint file holds one JSON object") from None
    return parse(obj)


def check_signature(checkpoint: Checkpoint, public_key: Ed25519PublicKey) -> None:
    """Raises CheckpointRefused unless ``public_key`` signed exactly these fields."""
    expected_id = key_id(public_key)
    if checkpoint.key_id != expected_id:
        raise CheckpointRefused(
            f"the checkpoint names key {checkpoint.key_id}, the public key given is {expected_id}"
        )
    try:
        signature = base64.b64decode(checkpoint.signature, validate=True)
        public_key.verify(signature, canonical(checkpoint.claims()))
    except (ValueError, InvalidSignature):
        raise CheckpointRefused("the signature does not verify: the checkpoint was altered") from None


async def checkpoint_now(
    pool: asyncpg.Pool, private_key: Ed25519PrivateKey, workspace_id: UUID
) -> Checkpoint | None:
    """A signed checkpoint of the workspace's current head, or None when it has no events. Count and head
    come from one statement (one snapshot)."""
    row = await pool.fetchrow(
        """SELECT e.position, e.hash, c.events
             FROM (SELECT count(*) AS events, max(position) AS head FROM events WHERE workspace_id = $1) c
             JOIN events e ON e.position = c.head""",
        workspace_id,
    )
    if row is None:
        return None
    return sign(private_key, workspace_id, row["position"], bytes(row["hash"]), row["events"])
