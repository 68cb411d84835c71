"""SCIM attribute paths: the ``attrPath`` notation and the PATCH ``path`` grammar.

``attrPath`` (RFC 7644 §3.10, and Figure 1 in §3.4.2.2) names an attribute, optionally qualified by
its schema URI and optionally followed by one sub-attribute::

    attrPath = [URI ":"] ATTRNAME *1subAttr

The PATCH ``path`` (RFC 7644 §3.5.2, Figure 7) adds value filters over multi-valued attributes::

    PATH = attrPath / valuePath [subAttr]

Parsing here is purely syntactic: whether a name exists is decided by :mod:`scimledger.scim.schemas`.
Attribute names keep the client's spelling; they are case-insensitive (RFC 7643 §2.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache
from typing import TYPE_CHECKING

from .errors import InvalidFilter, InvalidPath

if TYPE_CHECKING:
    from .filter import Expr

# ATTRNAME = ALPHA *(nameChar); nameChar = "-" / "_" / DIGIT / ALPHA (RFC 7644 §3.4.2.2, Figure 1).
# "$ref" is the one reserved sub-attribute name that starts with "$" (RFC 7643 §2.4).
_ATTRNAME = r"(?:\$ref|[A-Za-z][A-Za-z0-9_-]*)"
_NAME_RE = re.compile(_ATTRNAME)
_NAMES_RE = re.compile(rf"({_ATTRNAME})(?:\.({_ATTRNAME}))?")
# A schema URI as used by SCIM (RFC 3986 scheme ":" ...): no blanks, brackets or quotes.
_URI_RE = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:[^\s\[\]()\"]+")


@dataclass(frozen=True)
class AttrPath:
    """``[schema ":"] attr ["." sub_attr]`` as written by the client (RFC 7644 §3.10)."""

    schema: str | None
    attr: str
    sub_attr: str | None = None

    def __str__(self) -> str:
        text = self.attr if self.sub_attr is None else f"{self.attr}.{self.sub_attr}"
        return text if self.schema is None else f"{self.schema}:{text}"


@dataclass(frozen=True)
class PatchPath:
    """A PATCH ``path`` (RFC 7644 §3.5.2).

    ``emails[type eq "work"].value`` is ``PatchPath(AttrPath(None, "emails"), <filter>, "value")``. A
    plain ``name.givenName`` keeps its sub-attribute in ``attr`` and has ``value_filter = sub_attr =
    None``; ``sub_attr`` is only ever set after a value filter.
    """

    attr: AttrPath
    value_filter: Expr | None = None
    sub_attr: str | None = None


@lru_cache(maxsize=4096)  # paths repeat across requests; the results are immutable
def parse_attr_path(text: str) -> AttrPath:
    """Parse ``attrPath`` (RFC 7644 §3.10); raise :class:`InvalidPath` if it is malformed.

    The schema URI is everything up to the last ``":"``: attribute names never contain ``":"``,
    while URIs may contain ``"."`` (``...:core:2.0:User:name.givenName``).
    """
    schema: str | None = None
    names = text
    if ":" in text:
        schema, _, names = text.rpartition(":")
        if not _URI_RE.fullmatch(schema):
            raise InvalidPath(f"invalid schema URI in attribute path {text!r}")
    match = _NAMES_RE.fullmatch(names)
    if match is None:
        raise InvalidPath(f"invalid attribute path {text!r}")
    return AttrPath(schema, match.group(1), match.group(2))


@lru_cache(maxsize=4096)
def parse_patch_path(text: str) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2, Figure 7); raise :class:`InvalidPath` if malformed.

    Also a malformed value filter inside ``[...]`` raises :class:`InvalidPath`, with the filter error
    chained.
    """
    from .filter import parse_filter  # local import: filter.py imports this module

    open_at = text.find("[")
    if open_at < 0:
        return PatchPath(parse_attr_path(text))
    attr = parse_attr_path(text[:open_at])
    if attr.sub_attr is not None:
        raise InvalidPath(f"a value filter must follow a multi-valued attribute, not {text[:open_at]!r}")
    close_at = _closing_bracket(text, open_at)
    try:
        value_filter = parse_filter(text[open_at + 1 : close_at])
    except InvalidFilter as exc:
        raise InvalidPath(f"invalid value filter in path {text!r}: {exc.detail}") from exc
    rest = text[close_at + 1 :]
    if not rest:
        return PatchPath(attr, value_filter)
    if not rest.startswith(".") or not _NAME_RE.fullmatch(rest[1:]):
        raise InvalidPath(f"unexpected {rest!r} after the value filter in path {text!r}")
    return PatchPath(attr, value_filter, rest[1:])


def _closing_bracket(text: str, open_at: int) -> int:
    """Index of the ``"]"`` closing the ``"["`` at ``open_at``, skipping JSON string literals."""
    in_string = False
    escaped = False
    for index in range(open_at + 1, len(text)):
        char = text[index]
        if in_string:
            if escaped:
                escaped = False
            elif char == "\\":
                escaped = True
            elif char == '"':
                in_string = False
        elif char == '"':
            in_string = True
        elif char == "[":
            raise InvalidPath(f"nested value filters are not allowed in path {text!r}")
        elif char == "]":
            return index
    raise InvalidPath(f"unclosed '[' in path {text!r}")
