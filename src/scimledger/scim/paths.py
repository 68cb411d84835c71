"""SCIM attribute paths: the ``attrPath`` notation and the PATCH ``path`` grammar.

``attrPath`` (RFC 7644 §3.10, and Figure 1 in §3.4.2.2) names an attribute, optionally qualified by
its schema URI and optionally followed by one sub-attribute::

    attrPath = [URI ":"] ATTRNAME *1subAttr

The PATCH ``path`` grammar, which adds value filters, is :mod:`scimledger.scim.patch_path` (it needs the
filter parser, which needs this module).

Parsing here is purely syntactic: whether a name exists is decided by :mod:`scimledger.scim.schemas`.
Attribute names keep the client's spelling; they are case-insensitive (RFC 7643 §2.1).
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from functools import lru_cache

from .errors import InvalidPath

# ATTRNAME = ALPHA *(nameChar); nameChar = "-" / "_" / DIGIT / ALPHA (RFC 7644 §3.4.2.2, Figure 1).
# "$ref" is the one reserved sub-attribute name that starts with "$" (RFC 7643 §2.4).
_ATTRNAME = r"(?:\$ref|[A-Za-z][A-Za-z0-9_-]*)"
NAME_RE = re.compile(_ATTRNAME)
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
