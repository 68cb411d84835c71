"""Partial resource representations: the ``attributes`` and ``excludedAttributes`` parameters.

RFC 7644 §3.9 (and §3.4.2.5 for queries) lets a client shape every resource in a response:

- ``attributes``: "the default list of attributes SHALL be overridden, and each resource returned MUST
  contain the minimum set of resource attributes and any attributes or sub-attributes explicitly
  requested". The minimum set is the attributes whose ``returned`` characteristic is ``always``
  (RFC 7643 §7): ``id``, plus ``schemas``, which every resource carries (RFC 7643 §3). ``meta`` is
  ``returned: default``, so ``?attributes=userName`` gives ``schemas``, ``id`` and ``userName`` only,
  exactly as the RFC 7644 §3.9 example shows.
- ``excludedAttributes``: "the default set of attributes minus those attributes listed"; it "SHALL have
  no effect on attributes whose schema 'returned' setting is 'always'" (§3.4.2.5).
- ``returned: never`` (``password``) is never returned, even when named; ``returned: request`` only when
  named in ``attributes`` (RFC 7643 §7).

Names are in standard attribute notation (RFC 7644 §3.10): ``userName``, ``name.givenName``,
``emails.value``, ``meta.lastModified``, ``urn:ietf:params:scim:schemas:core:2.0:User:userName``,
``urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:department``, and the bare extension URI
for the whole extension object. They match case-insensitively (RFC 7643 §2.1).

Choices where the RFCs leave room:

- Unknown or malformed names are ignored, not rejected: RFC 7644 defines no error for them, and
  ``?attributes=nickName`` on a Group is a harmless no-op. A name the schema does not define still
  matches a top-level key of that exact (case-insensitive) spelling, so stored attributes outside the
  schema can be selected or excluded too.
- A sub-attribute selection keeps only the named sub-attributes: ``emails.value`` turns every email into
  ``{"value": ...}``. Objects (and multi-valued elements) emptied by the selection are dropped, as is an
  attribute or extension left with nothing; values that were already empty are left alone.
- ``schemas`` is always kept unchanged, even when the selection leaves out the extension object it lists.
- The two parameters are mutually exclusive (§3.9); :mod:`scimledger.scim.listing` rejects requests with
  both. Given both anyway, :func:`select_attributes` applies ``attributes`` and then removes ``excluded``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from typing import Any, Literal, TypeAlias

from .errors import InvalidPath
from .paths import parse_attr_path
from .schemas import COMMON_ATTRIBUTES, RESOURCE_TYPES, Attribute, Schema, canonical_path

ResourceTypeName: TypeAlias = Literal["User", "Group"]

_CORE = ""  # the scope of common and core-schema attributes; extensions use their lower-cased URI
_WHOLE = ""  # the attribute name standing for "the whole extension"


def parse_attribute_list(value: str | list[str] | None) -> list[str] | None:
    """The names in an ``attributes``/``excludedAttributes`` value (RFC 7644 §3.9, §3.4.2.5, §3.4.3).

    A query string carries "a comma-separated list of resource attribute names" (§3.9); a
    SearchRequest body carries a JSON array of strings (§3.4.3), whose elements are split on commas
    too. Blanks around names are stripped and empty names dropped. Returns None when no name is left
    (``attributes=`` is treated as absent).
    """
    if value is None:
        return None
    parts = [value] if isinstance(value, str) else value
    names = [name.strip() for part in parts for name in part.split(",")]
    kept = [name for name in names if name]
    return kept or None


def select_attributes(
    resource: Mapping[str, Any],
    resource_type: ResourceTypeName,
    *,
    attributes: list[str] | None,
    excluded: list[str] | None,
) -> dict[str, Any]:
    """A new dict with the parts of ``resource`` a response may show (RFC 7644 §3.9, RFC 7643 §7).

    ``attributes`` and ``excluded`` are attribute names as :func:`parse_attribute_list` returns them;
    None (or an empty list) means the parameter was not given. ``resource`` is not modified.
    """
    return _Plan(resource_type, attributes, excluded).project(resource)


def wants_attribute(
    resource_type: ResourceTypeName,
    attributes: list[str] | None,
    excluded: list[str] | None,
    name: str,
) -> bool:
    """Whether :func:`select_attributes` could keep any part of the attribute ``name`` (RFC 7644 §3.9).

    Lets the server skip loading what no response will show: ``wants_attribute("Group", None,
    ["members"], "members")`` and ``wants_attribute("Group", ["displayName"], None, "members")`` are
    False. ``name`` is an attribute path (``members``, ``name.givenName``, an extension attribute with
    its URI) or an extension URI; an unknown name counts as a ``returned: default`` top-level key.
    """
    return _Plan(resource_type, attributes, excluded).wants(name)


# --------------------------------------------------------------------------------------------------
# Resolved names


@dataclass(frozen=True)
class _Names:
    """Attribute names resolved against a resource type, lower-cased.

    ``whole``: ``(scope, attr)`` pairs naming a whole attribute, or ``(scope, _WHOLE)`` for a whole
    extension. ``subs``: ``(scope, attr, sub)`` triples naming one sub-attribute. The scope is ``_CORE``
    for common and core attributes, else the lower-cased extension URI.
    """

    whole: frozenset[tuple[str, str]]
    subs: frozenset[tuple[str, str, str]]

    def names_whole(self, scope: str, attr: str) -> bool:
        return (scope, _WHOLE) in self.whole or (scope, attr) in self.whole

    def names_some_sub(self, scope: str, attr: str) -> bool:
        return any(s == scope and a == attr for s, a, _sub in self.subs)

    def names_sub(self, scope: str, attr: str, sub: str) -> bool:
        return (scope, attr, sub) in self.subs

    def reaches(self, scope: str) -> bool:
        return any(s == scope for s, _a in self.whole) or any(s == scope for s, _a, _b in self.subs)


def _resolve(names: Iterable[str], extensions: Mapping[str, Schema], resource_type: str) -> _Names:
    """Resolve names per RFC 7644 §3.10; unknown or malformed ones become raw top-level keys."""
    whole: set[tuple[str, str]] = set()
    subs: set[tuple[str, str, str]] = set()
    for text in names:
        name = text.strip()
        lowered = name.lower()
        if not name:
            continue
        if lowered in extensions:
            whole.add((lowered, _WHOLE))
            continue
        try:
            path = canonical_path(resource_type, parse_attr_path(name))
        except InvalidPath:
            path = None
        if path is None:
            whole.add((_CORE, lowered))  # matches a key outside the schema spelled this way, if any
            continue
        scope = _CORE if path.schema is None else path.schema.lower()
        if path.sub_attr is None:
            whole.add((scope, path.attr.lower()))
        else:
            subs.add((scope, path.attr.lower(), path.sub_attr.lower()))
    return _Names(frozenset(whole), frozenset(subs))


# --------------------------------------------------------------------------------------------------
# The projection


@dataclass(frozen=True)
class _Keep:
    """How to keep one top-level attribute: whole, or only the sub-attributes the request names."""

    scope: str
    attr: str
    whole: bool


class _Plan:
    """The decisions of RFC 7644 §3.9 for one resource type and one pair of parameters."""

    def __init__(self, resource_type: str, attributes: list[str] | None, excluded: list[str] | None) -> None:
        rtype = RESOURCE_TYPES.get(resource_type)
        if rtype is None:
            raise ValueError(f"unknown resource type {resource_type!r}")
        self._resource_type = resource_type
        self._core: dict[str, Attribute] = {
            attr.name.lower(): attr for attr in COMMON_ATTRIBUTES + rtype.schema.attributes
        }
        self._extensions: dict[str, Schema] = {schema.id.lower(): schema for schema, _ in rtype.extensions}
        self._include = _resolve(attributes, self._extensions, resource_type) if attributes else None
        self._exclude = _resolve(excluded, self._extensions, resource_type) if excluded else None

    # Decisions ------------------------------------------------------------------------------------

    def _top(self, scope: str, name: str, attr: Attribute | None) -> _Keep | None:
        """Whether (and how) to keep a top-level attribute; ``name`` is lower-cased."""
        returned = "default" if attr is None else attr.returned
        if returned == "never":
            return None
        if returned == "always":
            return _Keep(scope, name, whole=True)
        whole = True
        if self._include is not None:
            if self._include.names_whole(scope, name):
                whole = True
            elif self._include.names_some_sub(scope, name):
                whole = False
            else:
                return None
        elif returned == "request":
            return None
        if self._exclude is not None and self._exclude.names_whole(scope, name):
            return None
        return _Keep(scope, name, whole)

    def _sub(self, keep: _Keep, sub: Attribute | None, name: str) -> bool:
        """Whether to keep a sub-attribute of an attribute kept as ``keep``; ``name`` is lower-cased."""
        returned = "default" if sub is None else sub.returned
        if returned == "never":
            return False
        if returned == "always":
            return True
        named = self._include is not None and self._include.names_sub(keep.scope, keep.attr, name)
        if not keep.whole and not named:
            return False
        if returned == "request" and not named:
            return False
        return not (self._exclude is not None and self._exclude.names_sub(keep.scope, keep.attr, name))

    def _extension(self, scope: str) -> bool:
        """Whether any part of the extension ``scope`` may be kept."""
        if self._include is not None and not self._include.reaches(scope):
            return False
        return not (self._exclude is not None and (scope, _WHOLE) in self._exclude.whole)

    # Applying them --------------------------------------------------------------------------------

    def project(self, resource: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in resource.items():
            lowered = key.lower()
            if lowered == "schemas":
                out[key] = copy.deepcopy(value)
            elif lowered in self._extensions and isinstance(value, Mapping):
                if self._extension(lowered):
                    kept = self._attributes(value, lowered, self._extensions[lowered].attribute)
                    if kept or not value:
                        out[key] = kept
            else:
                self._put(out, key, value, _CORE, self._core.get(lowered))
        return out

    def _attributes(
        self, obj: Mapping[str, Any], scope: str, lookup: Callable[[str], Attribute | None]
    ) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            self._put(out, key, value, scope, lookup(key))
        return out

    def _put(self, out: dict[str, Any], key: str, value: Any, scope: str, attr: Attribute | None) -> None:
        name = key.lower() if attr is None else attr.name.lower()
        keep = self._top(scope, name, attr)
        if keep is None:
            return
        if isinstance(value, Mapping):
            kept = self._complex(keep, attr, value)
            if kept or not value:
                out[key] = kept
        elif isinstance(value, list) and any(isinstance(item, Mapping) for item in value):
            items = [self._complex(keep, attr, item) if isinstance(item, Mapping) else item for item in value]
            items = [item for item in items if item != {}]
            if items:
                out[key] = items
        else:
            out[key] = copy.deepcopy(value)

    def _complex(self, keep: _Keep, attr: Attribute | None, obj: Mapping[str, Any]) -> dict[str, Any]:
        out: dict[str, Any] = {}
        for key, value in obj.items():
            sub = None if attr is None else attr.sub_attribute(key)
            if self._sub(keep, sub, key.lower() if sub is None else sub.name.lower()):
                out[key] = copy.deepcopy(value)
        return out

    # Asking ahead ---------------------------------------------------------------------------------

    def wants(self, text: str) -> bool:
        name = text.strip()
        lowered = name.lower()
        if lowered in self._extensions:
            return self._extension(lowered)
        try:
            path = canonical_path(self._resource_type, parse_attr_path(name))
        except InvalidPath:
            path = None
        if path is None:
            return self._top(_CORE, lowered, None) is not None
        scope = _CORE if path.schema is None else path.schema.lower()
        attr = (
            self._core[path.attr.lower()] if scope == _CORE else self._extensions[scope].attribute(path.attr)
        )
        keep = self._top(scope, path.attr.lower(), attr)
        if keep is None:
            return False
        if path.sub_attr is None:
            return True
        assert attr is not None  # canonical_path found the sub-attribute, so the attribute exists
        return self._sub(keep, attr.sub_attribute(path.sub_attr), path.sub_attr.lower())
