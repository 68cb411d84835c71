"""Events to bytes and back: eventsourcing's Mapper with an orjson transcoder.

Event payloads hold JSON values, plus datetimes, which travel as ``{"_type_": "datetime_iso", "_data_": ...}``
(the eventsourcing JSONTranscoder convention) so that they decode back to timezone-aware datetimes.
Identifiers inside payloads are plain strings. The stored topic is the event's stable name
(``MemberProvisioned``), set by the explicit ``TOPIC`` of each event class.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

import orjson
from eventsourcing.persistence import Mapper, Transcoder

import scimledger.domain  # noqa: F401 - registers every event topic

_TAG, _DATA = "_type_", "_data_"


def _default(obj: Any) -> Any:
    if isinstance(obj, datetime):
        return {_TAG: "datetime_iso", _DATA: obj.isoformat()}
    if isinstance(obj, (set, frozenset, tuple)):
        return list(obj)
    raise TypeError(f"cannot encode {type(obj).__name__} in an event")


def _revive(value: Any) -> Any:
    if isinstance(value, dict):
        if len(value) == 2 and value.get(_TAG) == "datetime_iso" and _DATA in value:
            return datetime.fromisoformat(value[_DATA])
        return {k: _revive(v) for k, v in value.items()}
    if isinstance(value, list):
        return [_revive(v) for v in value]
    return value


class OrjsonTranscoder(Transcoder):
    """Fast, exact JSON bytes for event state (the log stores these bytes as they are)."""

    def encode(self, obj: Any) -> bytes:
        return orjson.dumps(obj, default=_default, option=orjson.OPT_PASSTHROUGH_DATETIME)

    def decode(self, data: bytes) -> Any:
        return _revive(orjson.loads(data))


def build_mapper() -> Mapper[Any]:
    return Mapper(transcoder=OrjsonTranscoder())
