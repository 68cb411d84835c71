"""The PATCH ``path`` grammar (RFC 7644 §3.5.2, Figure 7): an ``attrPath`` or a value filter over a
multi-valued attribute, optionally followed by a sub-attribute::

    PATH = attrPath / valuePath [subAttr]

Built on :mod:`scimledger.scim.paths` (``attrPath``) and :mod:`scimledger.scim.filter` (the value filter).
"""

from __future__ import annotations

from dataclasses import dataclass
from functools import lru_cache

from .errors import InvalidFilter, InvalidPath
from .filter import Expr, parse_filter
from .paths import NAME_RE, AttrPath, parse_attr_path


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


@lru_cache(maxsize=4096)
def parse_patch_path(text: str) -> PatchPath:
    """Parse a PATCH ``path`` (RFC 7644 §3.5.2, Figure 7); raise :class:`InvalidPath` if malformed.

    Also a malformed value filter inside ``[...]`` raises :class:`InvalidPath`, with the filter error
    chained.
    """
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
    if not rest.startswith(".") or not NAME_RE.fullmatch(rest[1:]):
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
