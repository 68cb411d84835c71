"""Paging the admin API's lists (README "Admin API", "Lists"): ``limit`` and an opaque ``cursor``.

``GET /api/v1/members``, ``teams``, ``tokens``, ``outbox`` and ``drift`` answer at most ``limit`` items (an
integer from 1 to 1000, default 100) and ``next_cursor``: null on the last page, else the value to send as
``cursor`` for the next one. A cursor holds the keyset of the last item shown (``admin_views``), signed and
expiring like every cursor of this server (``scim.listing.encode_cursor``) and bound to its list, its
workspace and its filters. The query is checked before anything is read: a parameter the list does not
know, a repeated one, a ``limit`` out of range, a filter value the list does not know (an empty value is no
filter) and a cursor made for anything else are 400 ``invalid_command``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime
from typing import Any
from uuid import UUID

from starlette.requests import Request

from scimledger.domain.errors import InvalidCommand
from scimledger.scim import listing
from scimledger.scim.errors import ExpiredCursor, InvalidCursor

MAX_LIMIT = 1000
DEFAULT_LIMIT = 100
CURSOR_TTL_SECONDS = 24 * 3600  # as the audit log's: long enough for a person paging by hand
PAGING = ("limit", "cursor")


@dataclass(frozen=True)
class PageQuery:
    """A checked list request: its filters (None: no filter), page size, and where the page starts (the
    keyset of the previous page's last item; None: the first page)."""

    filters: dict[str, str | None]
    limit: int
    after: tuple[Any, ...] | None


def page_query(
    request: Request, listing_name: str, workspace_id: UUID, filters: Mapping[str, tuple[str, ...]]
) -> PageQuery:
    """The list request of ``request`` (module docstring); ``filters`` maps each filter of the list to its
    values."""
    found: dict[str, str] = {}
    for name, value in request.query_params.multi_items():
        if name not in filters and name not in PAGING:
            known = ", ".join([*filters, *PAGING])
            raise InvalidCommand(f"unknown query parameter {name!r}; known: {known}")
        if name in found:
            raise InvalidCommand(f"{name} may be given once")
        found[name] = value
    chosen: dict[str, str | None] = {}
    for name, values in filters.items():
        wanted = found.get(name) or None
        if wanted is not None and wanted not in values:
            raise InvalidCommand(f"{name} must be one of {', '.join(values)}, not {wanted!r}")
        chosen[name] = wanted
    limit = _limit(found.get("limit") or None)
    cursor = found.get("cursor") or None
    after = _decode(request, cursor, _binding(listing_name, workspace_id, chosen)) if cursor else None
    return PageQuery(chosen, limit, after)


def next_cursor(
    request: Request, listing_name: str, workspace_id: UUID, query: PageQuery, last: tuple[Any, ...] | None
) -> str | None:
    """The cursor of the page after the one that ended with keyset ``last`` (None: that was the last)."""
    if last is None:
        return None
    document = {"b": _binding(listing_name, workspace_id, query.filters), "k": [_encode_key(v) for v in last]}
    return listing.encode_cursor(document, _secret(request), ttl_seconds=CURSOR_TTL_SECONDS)


def _limit(text: str | None) -> int:
    if text is None:
        return DEFAULT_LIMIT
    if not text.isascii() or not text.isdigit() or len(text) > 4 or not 1 <= int(text) <= MAX_LIMIT:
        raise InvalidCommand(f"limit must be an integer from 1 to {MAX_LIMIT}")
    return int(text)


def _binding(listing_name: str, workspace_id: UUID, filters: Mapping[str, str | None]) -> list[Any]:
    """What a cursor is valid for: the list, the workspace and the filters."""
    return [listing_name, str(workspace_id), sorted([k, v] for k, v in filters.items())]


def _secret(request: Request) -> bytes:
    secret: bytes = request.app.state.cursor_secret
    return secret


def _decode(request: Request, cursor: str, binding: list[Any]) -> tuple[Any, ...]:
    try:
        document = listing.decode_cursor(cursor, _secret(request))
    except ExpiredCursor:
        raise InvalidCommand("the cursor has expired: start again from the first page") from None
    except InvalidCursor:
        raise InvalidCommand("cursor must be a next_cursor value from a previous page") from None
    if document.get("b") != binding:
        raise InvalidCommand("the cursor was made for another list or other filters: send the same ones")
    keys = document.get("k")
    if not isinstance(keys, list) or not keys:
        raise InvalidCommand("cursor must be a next_cursor value from a previous page")
    return tuple(_decode_key(k) for k in keys)


# A keyset value in a cursor: [kind, text] (a timestamp keeps its microseconds, as PostgreSQL has them).
def _encode_key(value: Any) -> list[Any]:
    if isinstance(value, datetime):
        return ["t", value.isoformat()]
    if isinstance(value, UUID):
        return ["u", str(value)]
    if isinstance(value, int) and not isinstance(value, bool):
        return ["i", value]
    if isinstance(value, str):
        return ["s", value]
    raise TypeError(f"cannot put {type(value).__name__} into a cursor")


def _decode_key(item: Any) -> Any:
    kind, value = item if isinstance(item, list) and len(item) == 2 else (None, None)
    try:
        if kind == "t" and isinstance(value, str):
            return datetime.fromisoformat(value)
        if kind == "u" and isinstance(value, str):
            return UUID(value)
        if kind == "i" and isinstance(value, int):
            return value
        if kind == "s" and isinstance(value, str):
            return value
    except ValueError:
        pass
    raise InvalidCommand("cursor must be a next_cursor value from a previous page")
