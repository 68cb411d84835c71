"""List and query parameters, ListResponse bodies and RFC 9865 cursors.

- :func:`query_from_params` reads the query string of ``GET /Users`` and ``GET /Groups`` (RFC 7644
  §3.4.2), :func:`query_from_search_body` the SearchRequest body of ``POST .../.search`` (§3.4.3); both
  give a :class:`ListQuery`. ``filter`` and ``sortBy`` are passed on as text: they need the resource type,
  and :func:`scimledger.scim.filter.parse_filter` / :func:`scimledger.scim.filter_sql.compile_sort`
  check them when the query runs.
- :func:`list_response` builds the ListResponse (RFC 7644 §3.4.2), with ``nextCursor`` and
  ``previousCursor`` (RFC 9865 §2) when given.
- :func:`encode_cursor` / :func:`decode_cursor` make opaque, tamper-evident, expiring cursors (RFC 9865
  §2, §5.2): ``base64url(JSON) "." base64url(truncated HMAC-SHA256)``, only characters from the RFC 3986
  §2.3 unreserved set. The content is signed, not encrypted: a client can read the position it was
  handed (sort key and id of a resource it has already seen) but cannot forge or alter it.

Rules, and the choices where the RFCs leave room:

- ``count`` (RFC 7644 §3.4.2.4): default :data:`DEFAULT_COUNT`; negative means 0 (totals only); more
  than :data:`MAX_COUNT` is served as :data:`MAX_COUNT` (the provider "MAY return fewer results", and
  RFC 9865 §4 ``maxPageSize`` is the maximum "regardless of what is specified for the count"). A count
  that is not an integer raises :class:`InvalidCount`, the RFC 9865 §2.1 error for "Count value is
  invalid" on queries.
- ``startIndex`` (§3.4.2.4): default 1; "A value less than 1 SHALL be interpreted as 1"; values above
  :data:`MAX_START_INDEX` are served as that (no result set is that large). Not an integer:
  :class:`InvalidValue`.
- ``sortOrder`` (§3.4.2.3): ``ascending`` (the default) or ``descending``, matched case-insensitively;
  anything else raises :class:`InvalidValue`.
- ``attributes`` and ``excludedAttributes`` are "mutually exclusive" (§3.9): both raise
  :class:`InvalidValue`.
- ``cursor`` (RFC 9865 §2): present and empty asks for the first cursor page; otherwise it must consist
  of unreserved characters, else :class:`InvalidCursor`. RFC 9865 §2.4 lets a client "use the
  'startIndex' or 'cursor' query parameters to request a specific method" but says nothing of both; the
  request is ambiguous, so both raise :class:`InvalidValue`.
- Parameter names: the exact RFC spelling wins; otherwise names match case-insensitively (RFC 7643 §2.1
  makes attribute names case-insensitive; RFC 7644 is silent on parameter names). Unknown query
  parameters and unknown SearchRequest attributes are ignored (the RFCs define no error for them).
  An empty query parameter (``filter=``) counts as absent, except ``cursor``.
- SearchRequest body (§3.4.3): a JSON object whose ``schemas`` contains
  :data:`SEARCH_REQUEST_SCHEMA` ("Query requests MUST be identified using" that URI). A body that is not
  an object, lacks that URI, or gives a known attribute a value of the wrong JSON type raises
  :class:`InvalidSyntax`; ``null`` counts as absent. ``attributes`` may also be a comma-separated string.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import math
import re
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .attributes import parse_attribute_list
from .errors import ExpiredCursor, InvalidCount, InvalidCursor, InvalidSyntax, InvalidValue, ScimError
from .resources import LIST_SCHEMA

SEARCH_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:SearchRequest"
LIST_RESPONSE_SCHEMA = LIST_SCHEMA

DEFAULT_COUNT = 100
"""Page size when the request gives no ``count`` (RFC 9865 §4 ``defaultPageSize``)."""
MAX_COUNT = 500
"""Largest page served, whatever ``count`` asks (RFC 9865 §4 ``maxPageSize``)."""
MAX_START_INDEX = 2**31 - 1
"""Larger ``startIndex`` values are served as this one: the page is empty either way."""
CURSOR_TTL_SECONDS = 3600
"""Default cursor lifetime (RFC 9865 §4 ``cursorTimeout``)."""
MAX_CURSOR_LENGTH = 4096
"""Longer cursors are refused unread."""

SortOrder: TypeAlias = Literal["ascending", "descending"]

_INTEGER_RE = re.compile(r"[+-]?[0-9]{1,30}")
_UNRESERVED_RE = re.compile(r"[A-Za-z0-9._~-]+")  # RFC 3986 §2.3
_CURSOR_RE = re.compile(r"([A-Za-z0-9_-]+)\.([A-Za-z0-9_-]+)")
_MAC_DOMAIN = b"scimledger cursor v1\x00"
_MAC_BYTES = 16


@dataclass(frozen=True)
class ListQuery:
    """The parameters of one query (RFC 7644 §3.4.2, §3.4.3; RFC 9865 §2).

    ``cursor`` is None for index pagination, ``""`` for the first page of cursor pagination and the
    client's ``nextCursor``/``previousCursor`` otherwise; ``start_index`` is meaningful only when
    ``cursor`` is None. ``count`` is already bounded to ``0..MAX_COUNT``.
    """

    filter: str | None = None
    sort_by: str | None = None
    sort_order: SortOrder = "ascending"
    start_index: int = 1
    count: int = DEFAULT_COUNT
    attributes: list[str] | None = None
    excluded_attributes: list[str] | None = None
    cursor: str | None = None


# --------------------------------------------------------------------------------------------------
# Reading requests


def query_from_params(params: Mapping[str, str]) -> ListQuery:
    """The :class:`ListQuery` of a query string (RFC 7644 §3.4.2; RFC 9865 §2); see the module notes."""

    def text(name: str) -> str | None:
        value = _lookup(params, name)
        return None if value is None or not value.strip() else value

    cursor = _lookup(params, "cursor")
    start_index = text("startIndex")
    count = text("count")
    return _query(
        filter=text("filter"),
        sort_by=text("sortBy"),
        sort_order=text("sortOrder"),
        start_index=None if start_index is None else _integer(start_index, "startIndex", InvalidValue),
        count=None if count is None else _integer(count, "count", InvalidCount),
        attributes=parse_attribute_list(text("attributes")),
        excluded=parse_attribute_list(text("excludedAttributes")),
        cursor=cursor,
    )


def query_from_search_body(body: Any) -> ListQuery:
    """The :class:`ListQuery` of a SearchRequest (RFC 7644 §3.4.3; RFC 9865 §3); see the module notes."""
    if not isinstance(body, Mapping):
        raise InvalidSyntax("a SearchRequest must be a JSON object")
    schemas = _lookup(body, "schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(uri, str) and uri.lower() == SEARCH_REQUEST_SCHEMA.lower() for uri in schemas
    ):
        raise InvalidSyntax(f'a SearchRequest\'s "schemas" must contain "{SEARCH_REQUEST_SCHEMA}"')

    def string(name: str) -> str | None:
        value = _lookup(body, name)
        if value is not None and not isinstance(value, str):
            raise InvalidSyntax(f'"{name}" must be a string')
        return value

    def integer(name: str) -> int | None:
        value = _lookup(body, name)
        if value is not None and (isinstance(value, bool) or not isinstance(value, int)):
            raise InvalidSyntax(f'"{name}" must be an integer')
        return value

    def names(name: str) -> list[str] | None:
        value = _lookup(body, name)
        if isinstance(value, list) and all(isinstance(item, str) for item in value):
            return parse_attribute_list(value)
        if value is None or isinstance(value, str):
            return parse_attribute_list(value)
        raise InvalidSyntax(f'"{name}" must be an array of strings')

    return _query(
        filter=string("filter") or None,
        sort_by=string("sortBy") or None,
        sort_order=string("sortOrder") or None,
        start_index=integer("startIndex"),
        count=integer("count"),
        attributes=names("attributes"),
        excluded=names("excludedAttributes"),
        cursor=string("cursor"),
    )


def _lookup(mapping: Mapping[str, Any], name: str) -> Any:
    """``mapping[name]``, else the value of the first key equal to ``name`` ignoring case, else None."""
    if name in mapping:
        return mapping[name]
    lowered = name.lower()
    return next((value for key, value in mapping.items() if key.lower() == lowered), None)


def _integer(text: str, name: str, error: type[ScimError]) -> int:
    if not _INTEGER_RE.fullmatch(text.strip()):
        raise error(f"{name} must be an integer, not {text[:40]!r}")
    return int(text)


def _query(
    *,
    filter: str | None,
    sort_by: str | None,
    sort_order: str | None,
    start_index: int | None,
    count: int | None,
    attributes: list[str] | None,
    excluded: list[str] | None,
    cursor: str | None,
) -> ListQuery:
    """Apply the bounds and the cross-parameter rules shared by both request forms."""
    order = (sort_order or "ascending").strip().lower()
    if order not in ("ascending", "descending"):
        raise InvalidValue(f'sortOrder must be "ascending" or "descending", not {(sort_order or "")[:40]!r}')
    if attributes is not None and excluded is not None:
        raise InvalidValue("attributes and excludedAttributes are mutually exclusive (RFC 7644 §3.9)")
    if cursor is not None:
        if start_index is not None:
            raise InvalidValue("a query uses either startIndex or cursor pagination, not both")
        if cursor and not _UNRESERVED_RE.fullmatch(cursor):
            raise InvalidCursor("the cursor is not one this server issued")
    return ListQuery(
        filter=filter,
        sort_by=sort_by,
        sort_order="descending" if order == "descending" else "ascending",
        start_index=1 if start_index is None else min(max(start_index, 1), MAX_START_INDEX),
        count=DEFAULT_COUNT if count is None else min(max(count, 0), MAX_COUNT),
        attributes=attributes,
        excluded_attributes=excluded,
        cursor=cursor,
    )


# --------------------------------------------------------------------------------------------------
# Responses


def list_response(
    resources: Iterable[Mapping[str, Any]],
    total: int | None,
    *,
    start_index: int | None,
    next_cursor: str | None = None,
    previous_cursor: str | None = None,
) -> dict[str, Any]:
    """A ListResponse (RFC 7644 §3.4.2) with the RFC 9865 §2 cursor attributes.

    ``itemsPerPage`` and ``Resources`` are always present (an empty page has ``"Resources": []``);
    ``startIndex`` only for index pagination (``start_index`` not None); ``totalResults`` unless
    ``total`` is None, which RFC 9865 §2 allows for cursor pagination. ``nextCursor`` must be given on
    every cursor page but the last, ``previousCursor`` never on the first (RFC 9865 §2, Table 2).
    """
    page = [dict(resource) for resource in resources]
    out: dict[str, Any] = {"schemas": [LIST_RESPONSE_SCHEMA]}
    if total is not None:
        out["totalResults"] = total
    out["itemsPerPage"] = len(page)
    if start_index is not None:
        out["startIndex"] = start_index
    if next_cursor is not None:
        out["nextCursor"] = next_cursor
    if previous_cursor is not None:
        out["previousCursor"] = previous_cursor
    out["Resources"] = page
    return out


# --------------------------------------------------------------------------------------------------
# Cursors


def encode_cursor(
    position: dict[str, Any], secret: bytes, ttl_seconds: int = CURSOR_TTL_SECONDS, now: float | None = None
) -> str:
    """An opaque cursor for ``position`` (any JSON object), valid for ``ttl_seconds`` (RFC 9865 §2, §5.2).

    Signed with HMAC-SHA256 under ``secret`` (truncated to 128 bits) and expiring ``ttl_seconds`` after
    ``now`` (default: the current time). Uses only ``A-Z a-z 0-9 - _ .``.
    """
    _check_secret(secret)
    if not isinstance(position, dict):
        raise TypeError("a cursor position must be a dict")
    if ttl_seconds <= 0:
        raise ValueError("ttl_seconds must be positive")
    issued = time.time() if now is None else now
    document = {"e": math.ceil(issued + ttl_seconds), "p": position}
    payload = _b64encode(
        json.dumps(document, separators=(",", ":"), sort_keys=True, allow_nan=False).encode()
    )
    return f"{payload}.{_mac(payload, secret)}"


def decode_cursor(text: str, secret: bytes, now: float | None = None) -> dict[str, Any]:
    """The position inside a cursor made by :func:`encode_cursor` with the same ``secret``.

    Raises :class:`InvalidCursor` for anything malformed, forged, altered or signed with another secret,
    and :class:`ExpiredCursor` for an authentic cursor whose lifetime has passed (RFC 9865 §2.1).
    """
    _check_secret(secret)
    match = _CURSOR_RE.fullmatch(text) if isinstance(text, str) and len(text) <= MAX_CURSOR_LENGTH else None
    if match is None:
        raise InvalidCursor("the cursor is not one this server issued")
    payload, mac = match.groups()
    if not hmac.compare_digest(mac, _mac(payload, secret)):
        raise InvalidCursor("the cursor is not one this server issued")
    try:
        document = json.loads(_b64decode(payload))
    except ValueError:  # also binascii.Error, JSONDecodeError and UnicodeDecodeError
        raise InvalidCursor("the cursor is not one this server issued") from None
    if (
        not isinstance(document, dict)
        or not isinstance(document.get("e"), int)
        or not isinstance(document.get("p"), dict)
    ):
        raise InvalidCursor("the cursor is not one this server issued")
    if (time.time() if now is None else now) >= document["e"]:
        raise ExpiredCursor("the cursor has expired; start again from the first page")
    position: dict[str, Any] = document["p"]
    return position


def _check_secret(secret: bytes) -> None:
    if not isinstance(secret, bytes) or not secret:
        raise ValueError("the cursor secret must be non-empty bytes")


def _mac(payload: str, secret: bytes) -> str:
    digest = hmac.new(secret, _MAC_DOMAIN + payload.encode("ascii"), hashlib.sha256).digest()
    return _b64encode(digest[:_MAC_BYTES])


def _b64encode(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode("ascii")


def _b64decode(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))
