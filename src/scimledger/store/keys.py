"""Data keys for personal data: crypto-shredding (issue 11; README "Erasure (crypto-shredding)").

**The master key** lives outside the database: ``SCIMLEDGER_MASTER_KEY`` (base64 of 32 bytes) when set,
otherwise the file ``master-key`` in the data directory (``SCIMLEDGER_HOME``, found as every command finds
it), made on first use with mode 0600. It is read once
per process and never logged or stored in the database. Servers on one database share it through
``SCIMLEDGER_MASTER_KEY``. HKDF-SHA256 derives two keys from it: one wraps data keys (AES-256-GCM), one keys
the pseudonymous ids of ``domain/ids.py`` (HMAC-SHA256).

**Data keys.** One AES-256-GCM key per Member (one person's membership of one workspace), made when the
member is created, kept wrapped in ``personal_keys`` (``schema.sql``, section 5) and inserted in the same
transaction as the member's creation event, one statement per append (``insert_new``). The mapper seals the
member's personal fields with it (``store/mapper.py``). Erasure deletes the row: every field sealed with that
key is unreadable from then on, while the log, which holds only ciphertext, is unchanged and still verifies.

**The ring** caches unwrapped keys per process (a bounded LRU), and remembers members that have no key (those
recorded before encryption: their events stay in clear; and erased ones). Decoding never waits for I/O, so
readers load the keys a batch of events needs first: ``ready`` (loading streams, the catch-up runner,
rebuilds and replays; ``fresh`` re-reads every key, so a key erased by another process is not used from this
one's cache), ``ready_to_encode`` (before a save seals fields of members it did not load). The keys a batch
needs are pinned for the task meanwhile (``_scope``), so a batch larger than the cache still decodes. The
audit API reads each event's wrapped key with the event itself (``scimledger_personal_key``), so a key
destroyed by any process is never used from a cache there.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import os
import secrets
from collections import OrderedDict
from collections.abc import Iterable, Mapping, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path
from typing import Any, TypeAlias
from uuid import UUID

import asyncpg
import orjson
from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.ciphers.aead import AESGCM
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from eventsourcing.persistence import StoredEvent
from eventsourcing.utils import get_topic

from scimledger import key_files
from scimledger.config import HOME_VARIABLE, locate_home
from scimledger.domain import ids, personal

MASTER_ENV = "SCIMLEDGER_MASTER_KEY"
MASTER_FILE = "master-key"
CACHE_SIZE = 10_000  # unwrapped keys kept per process
ENC, KEY = "$enc", "k"  # a sealed field: {"$enc": base64(nonce | ciphertext), "k": "<member id>"}
NONCE = 12
_SEALED = b'"$enc"'
_WRAP_INFO = b"scimledger personal data key wrapping v1"
_IDS_INFO = b"scimledger pseudonymous ids v1"

Conn: TypeAlias = asyncpg.Connection | asyncpg.Pool


class MasterKeyUnavailable(Exception):
    """The master key cannot be read or is malformed (the message says where it was looked for)."""


class KeyNotLoaded(RuntimeError):
    """A sealed field was read or written without its key loaded first (a missing ``ready`` call: a bug)."""


class SealBroken(ValueError):
    """A sealed field does not open with its member's key: altered, or moved from another field or member."""


class WrongMasterKey(RuntimeError):
    """A data key does not unwrap with this master key: it was made with another one."""


# --- the master key ---------------------------------------------------------------------------------------
def _derive(secret: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=None, info=info).derive(secret)


@dataclass(frozen=True)
class Master:
    """What the master key is used for: wrapping data keys, keying pseudonymous ids."""

    wrapper: AESGCM
    ids_key: bytes

    @classmethod
    def from_secret(cls, secret: bytes) -> Master:
        return cls(AESGCM(_derive(secret, _WRAP_INFO)), _derive(secret, _IDS_INFO))

    def wrap(self, member_id: str, data_key: bytes) -> bytes:
        nonce = os.urandom(NONCE)
        return nonce + self.wrapper.encrypt(nonce, data_key, f"member-key|{member_id}".encode())

    def unwrap(self, member_id: str, wrapped: bytes) -> bytes:
        try:
            return self.wrapper.decrypt(wrapped[:NONCE], wrapped[NONCE:], f"member-key|{member_id}".encode())
        except InvalidTag:
            raise WrongMasterKey(
                f"the data key of member {member_id} does not unwrap with this master key "
                f"({MASTER_ENV} or {MASTER_FILE} under SCIMLEDGER_HOME): use the key the database was "
                "written with"
            ) from None

    def keyed_hash(self, data: bytes) -> bytes:
        return hmac.new(self.ids_key, data, hashlib.sha256).digest()


def parse_secret(text: str, where: str) -> bytes:
    """32 bytes from their base64 text (standard or URL-safe alphabet)."""
    cleaned = text.strip()
    try:
        secret = base64.urlsafe_b64decode(
            cleaned.replace("+", "-").replace("/", "_") + "=" * (-len(cleaned) % 4)
        )
    except (binascii.Error, ValueError):
        raise MasterKeyUnavailable(f"{where} is not base64") from None
    if len(secret) != 32:
        raise MasterKeyUnavailable(f"{where} must hold 32 bytes in base64 (it holds {len(secret)})")
    return secret


def new_secret_text() -> str:
    """A new master key as its base64 text (e.g. for ``SCIMLEDGER_MASTER_KEY``)."""
    return base64.urlsafe_b64encode(secrets.token_bytes(32)).decode()


def _create_key_file(path: Path) -> None:
    """Write a new master key to ``path`` (mode 0600) unless another process got there first: written to a
    private temporary file, then linked into place, so nobody reads a half-written key."""
    key_files.create_once(path, (new_secret_text() + "\n").encode())


@lru_cache(maxsize=8)
def _master(configured: str | None, home: str | None) -> Master:
    if configured:
        return Master.from_secret(parse_secret(configured, MASTER_ENV))
    if home is None:
        found = locate_home(serving=False)
        if not found.found:  # never make a master key in a directory nobody will look in again
            raise MasterKeyUnavailable(f"no master key: {MASTER_ENV} is not set and {found.looked}")
        home = str(found.path)
    path = Path(home) / MASTER_FILE
    if not path.exists():
        _create_key_file(path)
    try:
        text = path.read_text()
    except OSError as error:
        raise MasterKeyUnavailable(f"cannot read the master key {path}: {error.strerror}") from error
    return Master.from_secret(parse_secret(text, f"the master key file {path}"))


def master(environ: Mapping[str, str] = os.environ) -> Master:
    """The master key (see the module docstring), made under the data directory on first use when unset;
    the data directory is found as every command finds it (``config.locate_home``)."""
    return _master(environ.get(MASTER_ENV) or None, environ.get(HOME_VARIABLE) or None)


ids.use_keyed_hash(lambda data: master().keyed_hash(data))


# --- data keys --------------------------------------------------------------------------------------------
@dataclass(frozen=True)
class DataKey:
    """One member's data key; a field is sealed with the member's id and the field's name as associated
    data, so a ciphertext moved to another member or field does not open."""

    member_id: str
    wrapped: bytes
    aead: AESGCM

    @classmethod
    def new(cls, member_id: str) -> DataKey:
        raw = AESGCM.generate_key(bit_length=256)
        return cls(member_id, master().wrap(member_id, raw), AESGCM(raw))

    @classmethod
    def unwrap(cls, member_id: str, wrapped: bytes) -> DataKey:
        return cls(member_id, wrapped, AESGCM(master().unwrap(member_id, wrapped)))

    def seal(self, field: str, plaintext: bytes) -> dict[str, str]:
        nonce = os.urandom(NONCE)
        sealed = nonce + self.aead.encrypt(nonce, plaintext, f"{self.member_id}|{field}".encode())
        return {ENC: base64.b64encode(sealed).decode(), KEY: self.member_id}

    def open(self, field: str, envelope: Mapping[str, str]) -> bytes:
        sealed = base64.b64decode(envelope[ENC])
        try:
            return self.aead.decrypt(sealed[:NONCE], sealed[NONCE:], f"{self.member_id}|{field}".encode())
        except InvalidTag:
            raise SealBroken(
                f"the field {field!r} does not open with member {self.member_id}'s key"
            ) from None


def is_envelope(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 2 and ENC in value and KEY in value


def sealed_mappings(payload: Mapping[str, Any]) -> Iterable[Mapping[str, Any]]:
    """Where sealed fields live in a decoded payload: at the top, and in a snapshot's ``state``."""
    yield payload
    inner = payload.get("state")
    if isinstance(inner, dict):
        yield inner


def sealed_by(state: bytes) -> set[str]:
    """The members whose keys sealed fields of an event's stored bytes."""
    if _SEALED not in state:
        return set()
    payload = orjson.loads(state)
    return {v[KEY] for m in sealed_mappings(payload) for v in m.values() if is_envelope(v)}


# The keys pinned for the current task's batch of events (see the module docstring).
_scope: ContextVar[dict[str, DataKey | None] | None] = ContextVar("scimledger_key_scope", default=None)


class KeyRing:
    """Unwrapped data keys of this process (module docstring, "The ring")."""

    def __init__(self, capacity: int = CACHE_SIZE) -> None:
        self.capacity = capacity
        self._cache: OrderedDict[str, DataKey | None] = OrderedDict()
        self._fresh: OrderedDict[str, bytes] = OrderedDict()  # made here, not yet inserted

    def _remember(self, member_id: str, key: DataKey | None) -> None:
        self._cache[member_id] = key
        self._cache.move_to_end(member_id)
        while len(self._cache) > self.capacity:
            self._cache.popitem(last=False)

    def _known(self, member_id: str) -> tuple[bool, DataKey | None]:
        scope = _scope.get()
        if scope is not None and member_id in scope:
            return True, scope[member_id]
        if member_id in self._cache:
            self._cache.move_to_end(member_id)
            return True, self._cache[member_id]
        return False, None

    def resolve(self, member_id: str) -> DataKey | None:
        """The member's key; None when the member has none (recorded in clear, or erased)."""
        known, key = self._known(member_id)
        if not known:
            raise KeyNotLoaded(f"the data key of member {member_id} was not loaded before use")
        return key

    def create(self, member_id: str) -> DataKey:
        """The key of a member being created: made on first use, inserted by ``insert_new`` with the
        member's creation event (made again by a retry after a rollback: the same key)."""
        _, key = self._known(member_id)
        if key is None:
            key = DataKey.new(member_id)
            self._remember(member_id, key)
        scope = _scope.get()
        if scope is not None:
            scope[member_id] = key
        self._fresh[member_id] = key.wrapped
        self._fresh.move_to_end(member_id)
        while len(self._fresh) > self.capacity:
            self._fresh.popitem(last=False)
        return key

    def from_row(self, member_id: str, wrapped: bytes | None) -> DataKey | None:
        """A key read with the row that needs it (the audit API): None when the row found none."""
        if wrapped is None:
            return None
        wrapped = bytes(wrapped)
        cached = self._cache.get(member_id)
        if cached is not None and cached.wrapped == wrapped:
            return cached
        key = DataKey.unwrap(member_id, wrapped)
        self._remember(member_id, key)
        return key

    def forget(self, member_id: str) -> None:
        """The member's key was destroyed (erasure)."""
        self._fresh.pop(member_id, None)
        self._remember(member_id, None)

    async def _load(
        self, conn: Conn, member_ids: set[str], *, fresh: bool, table: str
    ) -> dict[str, DataKey | None]:
        wanted = member_ids if fresh else {m for m in member_ids if not self._known(m)[0]}
        rows = (
            await conn.fetch(
                f"SELECT member_id::text, wrapped FROM {table} WHERE member_id = ANY($1::uuid[])",
                list(wanted),
            )
            if wanted
            else []
        )
        found = {r[0]: bytes(r[1]) for r in rows}
        pinned: dict[str, DataKey | None] = {}
        for member_id in member_ids:
            if member_id in wanted:
                wrapped = found.get(member_id)
                pinned[member_id] = self.from_row(member_id, wrapped)
                if wrapped is None:
                    self._remember(member_id, None)
            else:
                pinned[member_id] = self._known(member_id)[1]
        return pinned

    async def ready(
        self, conn: Conn, stored: Iterable[StoredEvent], *, fresh: bool = False, table: str = "personal_keys"
    ) -> None:
        """Load (one query) and pin the keys that sealed fields of ``stored`` before they are decoded."""
        member_ids = {m for s in stored if s is not None for m in sealed_by(s.state)}
        _scope.set(await self._load(conn, member_ids, fresh=fresh, table=table) if member_ids else None)

    async def ready_to_encode(self, conn: Conn, groups: Sequence[tuple[Sequence[Any], Any]]) -> None:
        """Load and pin the keys a save will seal fields with, but for members it creates (their keys are
        made by ``create``). ``groups``: the save's (aggregates, metadata) pairs, events still pending."""
        needed: set[str] = set()
        creating: set[str] = set()
        for aggregates, _ in groups:
            for aggregate in aggregates:
                pending = getattr(aggregate, "pending_events", None) or getattr(aggregate, "events", None)
                for event in pending or ():
                    topic = get_topic(type(event))
                    found = personal.spec(topic, event.__dict__)
                    if found is None:
                        continue
                    spec, fields = found
                    if not any(
                        fields.get(f) is not None and not personal.is_erased(fields.get(f))
                        for f in spec.fields
                    ):
                        continue
                    owner = spec.key_of(fields, event.originator_id)
                    if owner is not None:
                        (creating if topic in personal.CREATED else needed).add(owner)
        needed -= creating
        _scope.set(await self._load(conn, needed, fresh=False, table="personal_keys") if needed else {})

    async def insert_new(
        self, conn: asyncpg.Connection, workspace_id: UUID, stored: Sequence[StoredEvent]
    ) -> None:
        """Insert the keys of the members this append creates (one statement; same transaction)."""
        made: list[tuple[str, bytes]] = []
        for record in stored:
            if record.topic in personal.CREATED:
                member_id = str(record.originator_id)
                wrapped = self._fresh.pop(member_id, None)
                if wrapped is None:
                    raise KeyNotLoaded(f"no data key was made for the new member {member_id}")
                made.append((member_id, wrapped))
        if made:
            await conn.execute(
                """INSERT INTO personal_keys (member_id, workspace_id, wrapped)
                   SELECT m, $2, w FROM unnest($1::uuid[], $3::bytea[]) AS t(m, w)""",
                [m for m, _ in made],
                workspace_id,
                [w for _, w in made],
            )


RING = KeyRing()


async def ready(
    conn: Conn, stored: Iterable[StoredEvent], *, fresh: bool = False, table: str = "personal_keys"
) -> None:
    """``RING.ready``: call before decoding ``stored`` (see the module docstring)."""
    await RING.ready(conn, stored, fresh=fresh, table=table)


async def ready_streams(
    conn: Conn, found: Mapping[UUID, tuple[StoredEvent | None, list[StoredEvent]]]
) -> None:
    """``ready`` for what ``recorder.load_streams`` returned (snapshots and events)."""
    await RING.ready(
        conn, [s for snapshot, events in found.values() for s in (snapshot, *events) if s is not None]
    )


async def ready_to_encode(conn: Conn, groups: Sequence[tuple[Sequence[Any], Any]]) -> None:
    await RING.ready_to_encode(conn, groups)


async def insert_new(conn: asyncpg.Connection, workspace_id: UUID, stored: Sequence[StoredEvent]) -> None:
    await RING.insert_new(conn, workspace_id, stored)


async def has_key(conn: Conn, member_id: UUID) -> bool:
    return bool(
        await conn.fetchval("SELECT EXISTS (SELECT 1 FROM personal_keys WHERE member_id = $1)", member_id)
    )


async def destroy(conn: asyncpg.Connection, member_id: UUID) -> None:
    """Delete the member's data key (inside the erasing transaction; ``RING.forget`` after the commit)."""
    await conn.execute("DELETE FROM personal_keys WHERE member_id = $1", member_id)
