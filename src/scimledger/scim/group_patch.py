"""PATCH of a Group's ``members`` as set operations (RFC 7644 §3.5.2), apart from its other attributes.

A team can have 100,000 members, so a PATCH that adds or removes a few must not load them all: member
operations become adds and removes of member ids, and only ``replace`` of the whole list (or ``remove`` of
``members`` without a value) needs the current list. Shapes handled (each a client fixture):

- ``add``/``replace`` with ``path: "members"`` and a list of ``{"value": id}`` (Okta replaces with ``[]``);
- ``remove`` with ``path: "members[value eq \\"id\\"]"`` (Okta; ``or`` of several ``value eq`` too);
- ``remove`` with ``path: "members"`` and a ``value`` list: removes only those (Microsoft Entra);
- ``remove`` with ``path: "members"`` and no value: removes everyone (RFC 7644 §3.5.2.2);
- a path-less ``add``/``replace`` whose value object has a ``members`` key.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Literal

from scimledger.scim.errors import InvalidPath, InvalidValue
from scimledger.scim.filter import Compare, Expr, Or
from scimledger.scim.patch_path import parse_patch_path
from scimledger.scim.users import member_displays, member_ids


@dataclass(frozen=True)
class MemberChange:
    kind: Literal["add", "remove", "replace", "remove_all"]
    ids: tuple[str, ...] = ()
    displays: dict[str, str] = field(default_factory=dict)


def _ids_of_value_filter(expr: Expr) -> list[str]:
    """``value eq "a" or value eq "b"`` → [a, b]; any other member filter is not supported."""
    if isinstance(expr, Or):
        return _ids_of_value_filter(expr.left) + _ids_of_value_filter(expr.right)
    if (
        isinstance(expr, Compare)
        and expr.op == "eq"
        and expr.path.attr.lower() == "value"
        and expr.path.sub_attr is None
        and isinstance(expr.value, str)
    ):
        return [expr.value]
    raise InvalidPath('member filters must be of the form members[value eq "<id>"] (optionally or-ed)')


def _is_members(path: str) -> bool:
    head = path.strip().split("[", 1)[0].split(".", 1)[0].lower()
    return head in ("members", "urn:ietf:params:scim:schemas:core:2.0:group:members")


def split(operations: list[dict[str, Any]]) -> tuple[list[MemberChange], list[dict[str, Any]]]:
    """Split validated operations (``op`` lower-cased) into member changes and the other operations."""
    changes: list[MemberChange] = []
    others: list[dict[str, Any]] = []
    for operation in operations:
        op, path, value = operation["op"], operation.get("path"), operation.get("value")
        if path is None:
            if isinstance(value, dict):
                key = next((k for k in value if k.lower() == "members"), None)
                if key is not None:
                    rest = {k: v for k, v in value.items() if k != key}
                    kind: Literal["add", "replace"] = "replace" if op == "replace" else "add"
                    members = value[key] or []
                    changes.append(MemberChange(kind, member_ids(members), member_displays(members)))
                    if rest:
                        others.append({**operation, "value": rest})
                    continue
            others.append(operation)
            continue
        if not isinstance(path, str) or not _is_members(path):
            others.append(operation)
            continue
        parsed = parse_patch_path(path)
        if parsed.attr.sub_attr is not None or parsed.sub_attr is not None:
            raise InvalidPath("members sub-attributes cannot be patched; patch members by value")
        if parsed.value_filter is not None:
            if op != "remove":
                raise InvalidPath("use remove with members[value eq ...]; add members by value")
            changes.append(MemberChange("remove", tuple(_ids_of_value_filter(parsed.value_filter))))
        elif op == "remove":
            if value is None:
                changes.append(MemberChange("remove_all"))
            else:
                changes.append(
                    MemberChange("remove", member_ids(value if isinstance(value, list) else [value]))
                )
        elif op == "add":
            if value is None:
                raise InvalidValue("add of members needs a value")
            listed = value if isinstance(value, list) else [value]
            changes.append(MemberChange("add", member_ids(listed), member_displays(listed)))
        else:
            listed = value if isinstance(value, list) else [value] if value else []
            changes.append(MemberChange("replace", member_ids(listed), member_displays(listed)))
    return changes, others
