"""One log row as an auditor sees it: an audit entry, decoded from the bytes the hash chain covers.

What is shown is read from ``events.state`` (the event's exact encoded bytes) and ``metadata::text`` (the
text the chain hashes), never from the ``data`` jsonb copy, which only serves to select rows
(``schema.sql``, section 1). Secrets never appear: fields holding a secret's hash are shown as
``"[redacted]"``. The export record adds what an offline verifier needs to recompute the chain: the
workspace id, ``state`` as text (our events are UTF-8 JSON) and the metadata text exactly as hashed.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson

# Bookkeeping that records no decision an auditor cares about; listed only with ``include=internal``.
INTERNAL_TYPES = frozenset({"UniquenessClaimed", "UniquenessReleased", "PersonRegistered"})
SECRET_FIELDS = frozenset({"secret_hash"})
REDACTED = "[redacted]"
ENVELOPE_FIELDS = frozenset({"timestamp", "originator_topic"})  # eventsourcing's own, not the payload

# The columns every audit query selects, in this order (see ``entry``).
COLUMNS = (
    "position, workspace_id, stream_id, stream_version, event_type, state, metadata::text AS metadata_text,"
    " recorded_at, prev_hash, hash"
)


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


def payload(state: bytes) -> dict[str, Any]:
    """The event's data from its stored bytes: payload fields only, secrets redacted."""
    decoded = orjson.loads(state)
    return {
        k: (REDACTED if k in SECRET_FIELDS else _plain(v))
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
        "data": payload(row["state"]),
        "hash": bytes(row["hash"]).hex(),
    }


def export_record(row: Mapping[str, Any]) -> dict[str, Any]:
    """An audit entry plus what recomputing the chain offline needs (one NDJSON line of an export)."""
    return {
        **entry(row),
        "workspace_id": str(row["workspace_id"]),
        "prev_hash": bytes(row["prev_hash"]).hex(),
        "state": bytes(row["state"]).decode(),
        "metadata_text": row["metadata_text"],
    }
