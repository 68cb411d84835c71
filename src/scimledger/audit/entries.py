"""One log row as an auditor sees it: an audit entry, decoded from the bytes the hash chain covers.

What is shown is read from ``events.state`` (the event's exact encoded bytes) and ``metadata::text`` (the
text the chain hashes), never from the ``data`` jsonb copy, which only serves to select rows
(``schema.sql``, section 1). Secrets never appear: fields holding a secret's hash are shown as
``"[redacted]"``. The export record adds what an offline verifier needs to recompute the chain: the
workspace id, ``state`` as text (our events are UTF-8 JSON) and the metadata text exactly as hashed.

Personal fields are sealed in ``state`` (issue 11, ``store/mapper.py``). Each row is selected with the
wrapped key that sealed them (``personal_key``: ``scimledger_personal_key`` reads ``personal_keys`` in the
same statement, so a key destroyed by any process is never used from a cache) and shown opened, or as
``"[erased]"`` once the key is destroyed. ``state`` itself holds only ciphertext there.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
from eventsourcing.persistence import StoredEvent

from scimledger.domain.personal import ERASED
from scimledger.store import keys
from scimledger.store.keys import DataKey
from scimledger.store.mapper import build_mapper

# Bookkeeping that records no decision an auditor cares about; listed only with ``include=internal``.
INTERNAL_TYPES = frozenset({"UniquenessClaimed", "UniquenessReleased", "PersonRegistered"})
SECRET_FIELDS = frozenset({"secret_hash"})
REDACTED = "[redacted]"
ENVELOPE_FIELDS = frozenset({"timestamp", "originator_topic"})  # eventsourcing's own, not the payload

# The columns every audit query selects, in this order (see ``entry``).
COLUMNS = (
    "position, workspace_id, stream_id, stream_version, event_type, state, metadata::text AS metadata_text,"
    " recorded_at, prev_hash, hash, scimledger_personal_key(data) AS personal_key"
)
KEY_COLUMN = "personal_key"
MAPPER = build_mapper()
Resolve = Callable[[str], DataKey | None]


def resolver(row: Mapping[str, Any]) -> Resolve | None:
    """The key of a row selected with COLUMNS (None for a row without the column: an export read offline)."""
    if KEY_COLUMN not in row:
        return None
    wrapped = row[KEY_COLUMN]
    return lambda member_id: keys.RING.from_row(member_id, wrapped)


def decode(row: Mapping[str, Any]) -> Any:
    """The domain event of a row selected with COLUMNS, personal fields opened with the row's key."""
    stored = StoredEvent(row["stream_id"], row["stream_version"], row["event_type"], bytes(row["state"]))
    return MAPPER.to_domain_event(stored, resolver(row))


def timestamp(at: datetime) -> str:
    """RFC 3339 in UTC with microseconds, exactly as the chain hashes it (``schema.sql``, section 1)."""
    utc = at.astimezone(UTC)
    return f"{utc.year:04d}-{utc:%m-%dT%H:%M:%S.%f}Z"  # %Y drops leading zeros before the year 1000


def _plain(value: Any) -> Any:
    """Datetimes tagged by the transcoder (``{"_type_": "datetime_iso", ...}``) become their ISO text."""
    if isinstance(value, dict):
        if len(value) == 2 and value.get("_type_") == "datetime_iso" and "_data_" in value:
            return value["_data_"]
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_plain(v) for v in value]
    return value


def _opened(field: str, value: Any, resolve: Resolve | None) -> Any:
    """A sealed field opened (``"[erased]"`` when its key is destroyed); as stored without ``resolve``."""
    if resolve is None or not keys.is_envelope(value):
        return value
    key = resolve(value[keys.KEY])
    return str(ERASED) if key is None else orjson.loads(key.open(field, value))


def payload(state: bytes, resolve: Resolve | None = None) -> dict[str, Any]:
    """The event's data from its stored bytes: payload fields only, secrets redacted, sealed fields opened
    with ``resolve``."""
    decoded = orjson.loads(state)
    return {
        k: (REDACTED if k in SECRET_FIELDS else _plain(_opened(k, v, resolve)))
        for k, v in decoded.items()
        if k not in ENVELOPE_FIELDS
    }


def occurred_at(state: bytes) -> str | None:
    """When the domain decided the event (the event's own timestamp), as ISO text."""
    value = orjson.loads(state).get("timestamp")
    plain = _plain(value)
    return plain if isinstance(plain, str) else None


def entry(row: Mapping[str, Any]) -> dict[str, Any]:
    """An audit entry (the ``AuditEntry`` schema of the OpenAPI document) from a row selected with COLUMNS."""
    meta = orjson.loads(row["metadata_text"])
    actor = meta.get("actor") or {}
    return {
        "position": row["position"],
        "recorded_at": timestamp(row["recorded_at"]),
        "type": row["event_type"],
        "stream_id": str(row["stream_id"]),
        "stream_version": row["stream_version"],
        "actor": {"kind": actor.get("kind"), "id": actor.get("id"), "name": actor.get("name")},
        "source": meta.get("source"),
        "request_id": meta.get("request_id"),
        "user_agent": meta.get("user_agent"),
        "client_addr": meta.get("client_addr"),
        "data": payload(row["state"], resolver(row)),
        "hash": bytes(row["hash"]).hex(),
    }


def export_record(row: Mapping[str, Any], shown: Mapping[str, Any] | None = None) -> dict[str, Any]:
    """An audit entry plus what recomputing the chain offline needs (one NDJSON line of an export).

    Offline (a row without its key), a sealed field is taken as ``shown`` (the record read back) has it: it
    cannot be checked without the key, but its ciphertext is in ``state``, which the chain covers."""
    found = entry(row)
    if shown is not None and resolver(row) is None:
        data, shown_data = found["data"], shown.get("data")
        for field, value in data.items():
            if keys.is_envelope(value) and isinstance(shown_data, Mapping):
                data[field] = shown_data.get(field)
    return {
        **found,
        "workspace_id": str(row["workspace_id"]),
        "prev_hash": bytes(row["prev_hash"]).hex(),
        "state": bytes(row["state"]).decode(),
        "metadata_text": row["metadata_text"],
    }
