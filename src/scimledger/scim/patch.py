"""SCIM PATCH (RFC 7644 §3.5.2): apply a PatchOp's ``Operations`` to a User or Group.

:func:`apply_patch` takes a resource as the server renders it (SCIM camelCase JSON without ``meta``,
the enterprise extension under its URN key) and returns a new dict; the input is never mutated. The
operations run in order on a deep copy, so either all of them apply or a :mod:`scimledger.scim.errors`
exception propagates and the caller records nothing (RFC 7644 §3.5.2: a PATCH is atomic).
:func:`validate_patch_request` checks the request body and returns its normalised ``Operations``.

Besides the RFC, this accepts what identity providers really send:

- Microsoft Entra ID: ``op`` as ``Add``/``Replace``/``Remove``; booleans as the strings ``"True"`` /
  ``"False"``; path-less values keyed by paths (``"name.givenName"``, URN-qualified extension names);
  ``Remove`` of ``members`` with a ``value`` list naming the members to remove; ``Add``/``Replace`` of
  ``emails[type eq "work"].value`` when there is no work email yet (the element is created from the
  filter); the enterprise ``manager`` as a bare id string or a one-element list; ``"$ref": null``.
- Okta: a path-less ``replace`` of ``{"active": false}``; group renames whose value repeats the
  group's own ``id``; ``replace`` of ``members`` with the full list, possibly empty.

Choices where the RFC leaves room (each has a test in ``tests/unit/test_patch.py``):

- ``remove`` whose value filter matches nothing, or of an absent attribute, is a no-op: RFC 7644
  §3.5.2.2 defines ``noTarget`` only for a missing ``path``.
- ``replace`` whose value filter matches nothing is ``noTarget`` (RFC 7644 §3.5.2.3), except with a
  sub-attribute (``emails[type eq "work"].value``), where a new element is built from the filter's
  ``eq`` terms: Entra relies on it, and sends ``add`` with the same path for the same purpose.
- ``add``/``replace`` of ``null``, and ``replace`` of ``[]``, leave the attribute unassigned (RFC 7643
  §2.5). Setting a single-valued complex attribute merges sub-attributes (RFC 7644 §3.5.2.1/3.5.2.3).
- A readOnly attribute may appear in a value only with its current value (it is then ignored); an
  immutable one may only be set while it has no value (RFC 7643 §2.2). Otherwise: ``mutability``.
- Sub-attribute names a schema does not define are kept as sent inside complex values (the RFC's own
  examples send ``display`` in ``members``); unknown attributes are ``invalidPath``.
"""

from __future__ import annotations

import copy
from collections.abc import Callable
from dataclasses import dataclass
from functools import lru_cache
from typing import Any, Literal

from .errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from .filter import And, Compare, Expr, matches
from .patch_path import PatchPath, parse_patch_path
from .paths import AttrPath
from .schemas import ENTERPRISE_USER_SCHEMA, GROUP_SCHEMA, USER_SCHEMA, Attribute, find_attribute, resolve_urn

ResourceType = Literal["User", "Group"]

PATCH_OP_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
_OPS = ("add", "replace", "remove")
_ENTERPRISE = ENTERPRISE_USER_SCHEMA.id
_CORE = {"User": USER_SCHEMA.id, "Group": GROUP_SCHEMA.id}
_STRING_TYPES = ("string", "reference", "dateTime", "binary")


def validate_patch_request(body: Any) -> list[dict[str, Any]]:
    """Check a PatchOp request body (RFC 7644 §3.5.2) and return its normalised ``Operations``.

    ``schemas`` must contain the PatchOp URI and ``Operations`` must be a non-empty list of objects,
    else :class:`InvalidSyntax`. Each operation comes back as ``{"op", ["path"], ["value"]}`` with
    ``op`` lower-cased (Entra sends ``Add``/``Replace``/``Remove``); see :func:`_operation`.
    """
    if not isinstance(body, dict):
        raise InvalidSyntax("a PATCH request body must be a JSON object")
    schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or not any(_same_name(s, PATCH_OP_SCHEMA) for s in schemas):
        raise InvalidSyntax(f'"schemas" must contain "{PATCH_OP_SCHEMA}"')
    return _operations(_get(body, "Operations"))


def apply_patch(
    resource: dict[str, Any], operations: list[dict[str, Any]] | Any, resource_type: ResourceType
) -> dict[str, Any]:
    """Apply PATCH ``operations`` (RFC 7644 §3.5.2) to ``resource`` and return the new resource.

    ``resource`` is not modified. If any operation fails, its :class:`~.errors.ScimError` propagates
    and no change is returned: the operations are atomic.
    """
    patcher = _Patcher(copy.deepcopy(resource), resource_type)
    for operation in _operations(operations):
        patcher.apply(operation["op"], operation.get("path"), operation.get("value"))
    return patcher.doc


# --------------------------------------------------------------------------------------------------
# Request shape


def _operations(raw: Any) -> list[dict[str, Any]]:
    if not isinstance(raw, list) or not raw:
        raise InvalidSyntax('"Operations" must be a non-empty list')
    return [_operation(item, index) for index, item in enumerate(raw)]


def _operation(raw: Any, index: int) -> dict[str, Any]:
    """One PATCH operation (RFC 7644 §3.5.2), normalised.

    ``op`` is matched case-insensitively: Entra sends ``Add``, ``Replace`` and ``Remove``. ``add`` and
    ``replace`` need a ``value`` (:class:`InvalidValue` without one); ``remove`` needs a ``path``
    (:class:`NoTarget` without one, RFC 7644 §3.5.2.2). An empty ``path`` counts as none.
    """
    if not isinstance(raw, dict):
        raise InvalidSyntax(f"Operations[{index}] must be a JSON object")
    op = _get(raw, "op")
    if not isinstance(op, str) or op.lower() not in _OPS:
        raise InvalidSyntax(f"Operations[{index}].op must be add, replace or remove, not {op!r}")
    out: dict[str, Any] = {"op": op.lower()}
    path = _get(raw, "path")
    if path is not None and not isinstance(path, str):
        raise InvalidPath(f"Operations[{index}].path must be a string")
    if path is not None and path.strip():
        out["path"] = path.strip()
    elif out["op"] == "remove":
        raise NoTarget(f"Operations[{index}]: remove needs a path (RFC 7644 §3.5.2.2)")
    if any(key.lower() == "value" for key in raw):
        out["value"] = _get(raw, "value")
    elif out["op"] != "remove":
        raise InvalidValue(f"Operations[{index}]: {out['op']} needs a value")
    return out


# --------------------------------------------------------------------------------------------------
# Applying operations


@dataclass(frozen=True)
class _Target:
    """Where a path points: a top-level attribute, maybe a value filter, maybe a sub-attribute."""

    extension: str | None  # None: the attribute is at the top level; else the URN key it lives under
    attr: Attribute
    value_filter: Expr | None
    sub: Attribute | None


class _Patcher:
    """Applies operations one by one to ``doc``, a private copy of the resource."""

    def __init__(self, doc: dict[str, Any], resource_type: ResourceType) -> None:
        self.doc = doc
        self.resource_type = resource_type

    def apply(self, op: str, path: str | None, value: Any) -> None:
        """One operation; ``op`` is lower-case and ``path`` is set for ``remove`` (see _operation)."""
        if path is None:
            self.apply_value_object(op, value)
        elif self.resource_type == "User" and _same_name(resolve_urn("User", path), _ENTERPRISE):
            self.apply_extension(op, value)
        else:
            self.apply_path(op, parse_patch_path(path), value)

    def apply_value_object(self, op: str, value: Any) -> None:
        """``add``/``replace`` without a path: each key of ``value`` names a target (RFC 7644 §3.5.2.1).

        Keys may be paths, not just attribute names: Entra sends ``{"name.givenName": "x",
        "urn:...:enterprise:2.0:User:department": "y"}``. ``schemas`` is the server's and is ignored.
        """
        if not isinstance(value, dict):
            raise InvalidValue(f"{op} without a path needs a JSON object as its value")
        for key, item in value.items():
            if _same_name(key, "schemas"):
                continue
            self.apply(op, key, item)

    def apply_extension(self, op: str, value: Any) -> None:
        """The whole enterprise extension as the target: its sub-attributes one by one."""
        if op == "remove" or value is None:
            self.doc.pop(_ENTERPRISE, None)
            self.sync_extension_schema()
        elif isinstance(value, dict):
            for key, item in value.items():
                if not _same_name(key, "schemas"):  # the resource's, not an extension attribute
                    self.apply(op, f"{_ENTERPRISE}:{key}", item)
        else:
            raise InvalidValue(f"{_ENTERPRISE} must be given a JSON object")

    def apply_path(self, op: str, path: PatchPath, value: Any) -> None:
        target = self.resolve(path)
        # Only readOnly and immutable attributes are checked against their value before (RFC 7643 §2.2).
        guarded = target.attr.mutability in ("readOnly", "immutable")
        before = copy.deepcopy(self.get(target)) if guarded else None
        if op == "remove":
            self.remove(target, value)
        elif target.value_filter is not None:
            self.write_filtered(op, target, value)
        elif target.sub is not None:
            self.write_sub_attribute(target, value)
        else:
            self.write(op, target, value)
        if guarded:
            _check_mutability(target.attr, before, self.get(target))

    # -- paths -------------------------------------------------------------------------------------

    def resolve(self, path: PatchPath) -> _Target:
        """Resolve a parsed path against the schemas (RFC 7644 §3.10): names are case-insensitive."""
        extension, attr = self.find(path.attr.schema, path.attr.attr)
        sub_name = path.attr.sub_attr or path.sub_attr
        sub = None
        if sub_name is not None:
            sub = attr.sub_attribute(sub_name)
            if sub is None:
                raise InvalidPath(f"{attr.name} has no sub-attribute {sub_name!r}")
        if path.value_filter is not None and not attr.multi_valued:
            raise InvalidPath(f"a value filter needs a multi-valued attribute, and {attr.name} is not")
        return _Target(extension, attr, path.value_filter, sub)

    def find(self, schema: str | None, name: str) -> tuple[str | None, Attribute]:
        """The attribute ``[schema:]name``; an unqualified name is tried in the core schema, then in
        the enterprise extension (Entra's ``{"op": "Add", "path": "manager", ...}``)."""
        found = _find(self.resource_type, schema, name)
        if found is None:
            raise InvalidPath(f"{self.resource_type} has no attribute {AttrPath(schema, name)}")
        return found

    def holder(self, target: _Target) -> dict[str, Any]:
        if target.extension is None:
            return self.doc
        extension = self.doc.get(target.extension)
        return extension if isinstance(extension, dict) else {}

    def get(self, target: _Target) -> Any:
        return self.holder(target).get(target.attr.name)

    def set(self, target: _Target, value: Any) -> None:
        """Store ``value``; ``None``, ``[]`` and ``{}`` unassign the attribute (RFC 7643 §2.5)."""
        holder = self.holder(target)
        if target.extension is not None:
            holder = self.doc.setdefault(target.extension, holder)
        if value is None or value == [] or value == {}:
            holder.pop(target.attr.name, None)
        else:
            holder[target.attr.name] = value
        if target.extension is not None:
            self.sync_extension_schema()

    def sync_extension_schema(self) -> None:
        """Keep the extension's URN in ``schemas`` exactly while the extension has attributes."""
        schemas = list(self.doc.get("schemas", []))
        listed = [urn for urn in schemas if _same_name(urn, _ENTERPRISE)]
        if self.doc.get(_ENTERPRISE):
            if not listed:
                self.doc["schemas"] = [*schemas, _ENTERPRISE]
        else:
            self.doc.pop(_ENTERPRISE, None)
            if listed:
                self.doc["schemas"] = [urn for urn in schemas if urn not in listed]

    # -- add and replace ---------------------------------------------------------------------------

    def write(self, op: str, target: _Target, value: Any) -> None:
        """``add``/``replace`` of a whole attribute (RFC 7644 §3.5.2.1, §3.5.2.3).

        Multi-valued: ``add`` appends the values not already there, ``replace`` replaces them all.
        Complex: the given sub-attributes are merged in. Otherwise the value is set.
        """
        attr, current, new = target.attr, self.get(target), _coerce(target.attr, value)
        if new is None:
            self.set(target, None)
        elif attr.multi_valued:
            self.set(target, _union(attr, (current or []) if op == "add" else [], new))
        elif attr.type == "complex":
            self.set(target, _merge(current, new))
        else:
            self.set(target, new)

    def write_sub_attribute(self, target: _Target, value: Any) -> None:
        """``name.givenName``: set one sub-attribute of a complex attribute (every value of a
        multi-valued one, as if filtered by a filter that matches all)."""
        assert target.sub is not None
        current = self.get(target)
        if not target.attr.multi_valued:
            self.set(target, _set_sub(current if isinstance(current, dict) else {}, target.sub, value))
        elif not current:
            raise NoTarget(f"{target.attr.name} has no values to set {target.sub.name} on")
        else:
            self.set(target, [_set_sub(element, target.sub, value) for element in current])

    def write_filtered(self, op: str, target: _Target, value: Any) -> None:
        """``add``/``replace`` of the elements a value filter selects (RFC 7644 §3.5.2.3).

        With a sub-attribute (``addresses[type eq "work"].streetAddress``) it is set on every match;
        with none, ``replace`` replaces each match and ``add`` merges into it. If nothing matches,
        ``replace`` without a sub-attribute is :class:`NoTarget` (RFC 7644 §3.5.2.3), and otherwise the
        element is created: Entra sends ``Replace``/``Add`` of ``emails[type eq "work"].value`` for a
        user who has no work email yet and expects ``{"type": "work", "value": ...}`` to appear.
        """
        assert target.value_filter is not None
        items: list[Any] = list(self.get(target) or [])
        hits = [index for index, element in enumerate(items) if self.selects(target, element)]
        if not hits:
            if op == "replace" and target.sub is None:
                raise NoTarget(f"no value of {target.attr.name} matches the path's filter")
            items.append(_element_from_filter(target.attr, target.value_filter))
            hits = [len(items) - 1]
        for index in hits:
            if target.sub is not None:
                items[index] = _set_sub(items[index], target.sub, value)
            else:
                element = _coerce_single(target.attr, value)
                items[index] = _merge(None if op == "replace" else items[index], element)
        self.set(target, _union(target.attr, [], items))

    # -- remove ------------------------------------------------------------------------------------

    def remove(self, target: _Target, value: Any) -> None:
        """``remove`` (RFC 7644 §3.5.2.2): the attribute, a sub-attribute, or the filtered values.

        Entra removes group members with ``{"op": "Remove", "path": "members", "value": [{"value":
        "<id>"}]}``: with a ``value`` on a multi-valued path, only the listed values are removed.
        Removing what is not there (or what no value matches) changes nothing.
        """
        current = self.get(target)
        if target.value_filter is None and target.sub is None:
            if value is not None and target.attr.multi_valued:
                self.set(target, _difference(current or [], _coerce(target.attr, value)))
            else:
                self.set(target, None)
        elif not target.attr.multi_valued:
            assert target.sub is not None
            if isinstance(current, dict):
                self.set(target, _set_sub(current, target.sub, None))
        else:
            kept = []
            for element in current or []:
                if self.selects(target, element):
                    if target.sub is None:
                        continue
                    element = _set_sub(element, target.sub, None)
                kept.append(element)
            self.set(target, [element for element in kept if element != {}])

    def selects(self, target: _Target, element: Any) -> bool:
        """Whether ``element`` of a multi-valued attribute is selected by the target's filter."""
        if target.value_filter is None:
            return True
        subject = element if isinstance(element, dict) else {"value": element}
        return matches(target.value_filter, subject, case_exact=_case_exact(target.attr))


# --------------------------------------------------------------------------------------------------
# Values


@lru_cache(maxsize=4096)
def _find(resource_type: ResourceType, schema: str | None, name: str) -> tuple[str | None, Attribute] | None:
    """``_Patcher.find``'s look-up, cached: the schemas never change while the server runs."""
    core = _CORE[resource_type]
    extensions = [_ENTERPRISE] if resource_type == "User" else []
    for urn in [schema] if schema is not None else [core, *extensions]:
        attr = find_attribute(resource_type, AttrPath(urn, name))
        if attr is not None:
            return (None if _same_name(resolve_urn(resource_type, urn), core) else _ENTERPRISE), attr
    return None


def _coerce(attr: Attribute, value: Any) -> Any:
    """``value`` checked against ``attr``'s type (RFC 7643 §2.3), canonicalised; ``None`` stays.

    A multi-valued attribute takes a list (a single value is taken as a list of one); a single
    complex attribute takes a one-element list too (Entra: ``"path": "manager", "value": [{...}]``).
    """
    if value is None:
        return None
    if attr.multi_valued:
        values = value if isinstance(value, list) else [value]
        return [_merge(None, _coerce_single(attr, item)) for item in values if item is not None]
    if attr.type == "complex" and isinstance(value, list) and len(value) == 1:
        value = value[0]
    return _coerce_single(attr, value)


def _coerce_single(attr: Attribute, value: Any) -> Any:
    """One value of ``attr``; a wrong JSON type is :class:`InvalidValue`."""
    if attr.type == "complex":
        return _coerce_complex(attr, value)
    if attr.type == "boolean":
        return _boolean(attr, value)
    if attr.type == "integer":
        valid = isinstance(value, int) and not isinstance(value, bool)
    elif attr.type == "decimal":
        valid = isinstance(value, int | float) and not isinstance(value, bool)
    else:
        valid = isinstance(value, str)
    if not valid:
        raise InvalidValue(f"{attr.name} must be a {attr.type}, not {value!r}")
    return value


def _boolean(attr: Attribute, value: Any) -> bool:
    """A boolean; Entra sends ``"True"``/``"False"`` (``active``, ``primary``), in any case."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidValue(f"{attr.name} must be a boolean, not {value!r}")


def _coerce_complex(attr: Attribute, value: Any) -> dict[str, Any]:
    """A complex value with canonical sub-attribute names; ``None`` sub-values are kept (to unassign).

    Entra sends the enterprise ``manager`` as a bare id string: a string given for a single-valued
    complex attribute with a ``value`` sub-attribute means ``{"value": string}``.
    """
    value_sub = attr.sub_attribute("value")
    if isinstance(value, str) and not attr.multi_valued and value_sub is not None:
        return {value_sub.name: _coerce_single(value_sub, value)}
    if not isinstance(value, dict):
        raise InvalidValue(f"{attr.name} must be a JSON object, not {value!r}")
    out: dict[str, Any] = {}
    for key, item in value.items():
        sub = attr.sub_attribute(key)
        out[key if sub is None else sub.name] = item if sub is None else _coerce(sub, item)
    return out


def _merge(current: Any, new: Any) -> Any:
    """``current`` with the sub-attributes of the complex value ``new`` set, where a ``None`` in
    ``new`` unassigns (``"$ref": null``); a simple ``new`` is returned as it is."""
    if not isinstance(new, dict):
        return new
    out = dict(current) if isinstance(current, dict) else {}
    for key, item in new.items():
        if item is None:
            out.pop(key, None)
        else:
            out[key] = item
    return out


def _set_sub(element: Any, sub: Attribute, value: Any) -> dict[str, Any]:
    """``element`` with sub-attribute ``sub`` set to ``value`` (``None`` unassigns it), honouring
    the sub-attribute's own mutability (``members[...].value`` is immutable)."""
    out = dict(element) if isinstance(element, dict) else {"value": element}
    new = _coerce(sub, value)
    _check_mutability(sub, out.get(sub.name), new)
    if new is None:
        out.pop(sub.name, None)
    else:
        out[sub.name] = new
    return out


def _union(attr: Attribute, current: list[Any], new: list[Any]) -> list[Any]:
    """``current`` followed by the values of ``new`` it does not have (RFC 7644 §3.5.2.1: adding a
    value that is already there changes nothing). A group member is identified by its ``value``."""
    out = list(current)
    for item in new:
        if not any(_same_value(attr, item, existing) for existing in out):
            out.append(item)
    return out


def _difference(current: list[Any], removals: list[Any]) -> list[Any]:
    """``current`` without the values ``removals`` lists; ``{"value": "<id>"}`` names every element
    whose ``value`` is ``<id>`` (the sub-attributes given must all match)."""

    def listed(element: Any) -> bool:
        for removal in removals:
            if isinstance(removal, dict) and isinstance(element, dict):
                if removal and all(element.get(key) == item for key, item in removal.items()):
                    return True
            elif removal == element:
                return True
        return False

    return [element for element in current if not listed(element)]


def _same_value(attr: Attribute, left: Any, right: Any) -> bool:
    if attr.name == "members" and isinstance(left, dict) and isinstance(right, dict):
        return left.get("value") == right.get("value")
    return bool(left == right)


def _element_from_filter(attr: Attribute, value_filter: Expr) -> dict[str, Any]:
    """The element a value filter of ``eq`` terms joined by ``and`` describes: ``type eq "work"``
    gives ``{"type": "work"}``. Any other filter cannot describe one: :class:`NoTarget`."""
    terms: list[Compare] = []

    def collect(expr: Expr) -> bool:
        if isinstance(expr, And):
            return collect(expr.left) and collect(expr.right)
        if isinstance(expr, Compare) and expr.op == "eq" and expr.path.sub_attr is None:
            terms.append(expr)
            return True
        return False

    if not collect(value_filter):
        raise NoTarget(f"no value of {attr.name} matches the path's filter")
    element = {}
    for term in terms:
        if attr.sub_attribute(term.path.attr) is None:
            raise InvalidPath(f"{attr.name} has no sub-attribute {term.path.attr!r}")
        element[term.path.attr] = term.value
    return {key: item for key, item in _coerce_complex(attr, element).items() if item is not None}


# --------------------------------------------------------------------------------------------------
# Schema helpers


def _check_mutability(attr: Attribute, before: Any, after: Any) -> None:
    """RFC 7643 §2.2: a readOnly attribute may not change; an immutable one may only be assigned
    while it has no value. Repeating the current value is not a change (Okta sends a group's own
    ``id`` back when renaming it)."""
    if before == after:
        return
    if attr.mutability == "readOnly":
        raise Mutability(f"{attr.name} is readOnly")
    if attr.mutability == "immutable" and before is not None:
        raise Mutability(f"{attr.name} is immutable and already has a value")


def _case_exact(attr: Attribute) -> Callable[[AttrPath], bool]:
    """For :func:`matches`: whether a value filter compares ``attr``'s sub-attribute case-exactly."""

    def case_exact(path: AttrPath) -> bool:
        sub = attr.sub_attribute(path.attr)
        return sub is not None and sub.case_exact

    return case_exact


def _same_name(left: Any, right: str) -> bool:
    """Attribute names and schema URIs compare case-insensitively (RFC 7643 §2.1)."""
    return isinstance(left, str) and left.lower() == right.lower()


def _get(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` with the key matched case-insensitively."""
    return next((item for key, item in obj.items() if _same_name(key, name)), None)
