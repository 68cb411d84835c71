"""Events to bytes and back: eventsourcing's Mapper with an orjson transcoder, sealing personal data.

Event payloads hold JSON values, plus datetimes, which travel as ``{"_type_": "datetime_iso", "_data_": ...}``
(the eventsourcing JSONTranscoder convention) so that they decode back to timezone-aware datetimes.
Identifiers inside payloads are plain strings. The stored topic is the event's stable name
(``MemberProvisioned``), set by the explicit ``TOPIC`` of each event class.

Personal fields (``domain/personal.py``) are stored sealed with their member's data key (``store/keys.py``,
AES-256-GCM): ``{"$enc": "<base64 nonce | ciphertext>", "k": "<member id>"}`` in place of the value, so the
log's bytes, and the ``data`` jsonb view of them, hold only ciphertext there; ids, types, roles and statuses
stay in clear. Decoding opens each sealed field with its key, or gives the field's placeholder
(``"[erased]"``) when the key was destroyed. A field stored in clear (events recorded before encryption, or
of a member who has no key) decodes as it was: old logs read as before. A placeholder is stored as it is
(it holds nothing personal).
"""

from __future__ import annotations

from collections.abc import Callable, Hashable
from datetime import datetime
from typing import Any, cast

import orjson
from eventsourcing.persistence import (
    Mapper,
    MapperDeserialisationError,
    StoredEvent,
    Transcoder,
    find_id_convertor,
)
from eventsourcing.utils import get_topic, resolve_topic

import scimledger.domain  # noqa: F401 - registers every event topic
from scimledger.domain import personal
from scimledger.store import keys
from scimledger.store.keys import DataKey

_TAG, _DATA = "_type_", "_data_"
Resolve = Callable[[str], DataKey | None]


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


class PersonalMapper(Mapper[Any]):
    """The Mapper (eventsourcing's, same steps) with personal fields sealed on the way to the log."""

    def __init__(self, transcoder: Transcoder, ring: keys.KeyRing = keys.RING) -> None:
        super().__init__(transcoder=transcoder)
        self.ring = ring

    def _seal(self, topic: str, originator_id: Any, state: dict[str, Any]) -> dict[str, Any]:
        found = personal.spec(topic, state)
        if found is None:
            return state
        spec, fields = found
        owner = spec.key_of(fields, originator_id)
        names = [n for n in spec.fields if fields.get(n) is not None and not personal.is_erased(fields[n])]
        if owner is None or not names:
            return state
        key = self.ring.create(owner) if topic in personal.CREATED else self.ring.resolve(owner)
        if key is None:  # a member recorded in clear (before encryption) keeps its fields in clear
            return state
        sealed = {**fields, **{n: key.seal(n, self.transcoder.encode(fields[n])) for n in names}}
        return sealed if fields is state else {**state, "state": sealed}

    def to_stored_event(self, domain_event: Any) -> StoredEvent:
        topic = get_topic(domain_event.__class__)
        event_state = dict(vars(domain_event))
        originator_id = event_state.pop("originator_id")
        originator_version = event_state.pop("originator_version")
        class_version = getattr(type(domain_event), "class_version", 1)
        if class_version > 1:
            event_state["class_version"] = class_version
        event_state = self._seal(topic, originator_id, event_state)
        return StoredEvent(
            originator_id=originator_id,
            originator_version=originator_version,
            topic=topic,
            state=self.transcoder.encode(event_state),
        )

    def open(self, state: dict[str, Any], resolve: Resolve) -> None:
        """Open the sealed fields of a decoded payload in place (placeholders for destroyed keys)."""
        for fields in keys.sealed_mappings(state):
            assert isinstance(fields, dict)
            for name, value in fields.items():
                if keys.is_envelope(value):
                    key = resolve(value[keys.KEY])
                    if key is None:
                        fields[name] = personal.placeholder(name)
                    else:
                        fields[name] = self.transcoder.decode(key.open(name, value))

    def to_domain_event(self, stored_event: StoredEvent, resolve: Resolve | None = None) -> Any:
        """The domain event; sealed fields opened with ``resolve`` (default: this process's ring, loaded
        by ``keys.ready`` beforehand)."""
        cls = resolve_topic(stored_event.topic)
        try:
            event_state: dict[str, Any] = self.transcoder.decode(stored_event.state)
        except Exception as e:
            msg = (
                f"Failed to deserialise state of stored event with topic '{stored_event.topic}', "
                f"originator_id '{stored_event.originator_id}' and "
                f"originator_version {stored_event.originator_version}: {e}"
            )
            raise MapperDeserialisationError(msg) from e
        self.open(event_state, resolve or self.ring.resolve)
        id_convertor = find_id_convertor(cls, cast(Hashable, type(stored_event.originator_id)))
        event_state["originator_id"] = id_convertor(stored_event.originator_id)
        event_state["originator_version"] = stored_event.originator_version
        class_version = getattr(cls, "class_version", 1)
        from_version = event_state.pop("class_version", 1)
        while from_version < class_version:
            getattr(cls, f"upcast_v{from_version}_v{from_version + 1}")(event_state)
            from_version += 1
        domain_event = object.__new__(cls)
        object.__setattr__(domain_event, "__dict__", event_state)
        return domain_event


def build_mapper() -> PersonalMapper:
    return PersonalMapper(transcoder=OrjsonTranscoder())
