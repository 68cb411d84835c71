"""Reading User and Group bodies (RFC 7644 §3.3 create, §3.5.1 replace; RFC 7643 §4.1, §4.2, §4.3).

A body becomes the attributes we store: names in canonical spelling, values coerced to their schema types
(Entra's "True"/"False" strings become booleans), the enterprise extension under its URN (also when the
body names it, or ``schemas``, with a legacy URN: ``schemas.resolve_urn``, OneLogin's templates). Read-only
attributes (id, meta, groups) are ignored (RFC 7644 §3.3, §3.5.1); ``password`` is dropped — it is never
stored, logged or returned; attributes the schemas don't define (e.g. an IdP's custom extension) are ignored.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from functools import lru_cache
from typing import Any, Literal

from scimledger.scim.errors import InvalidPath, InvalidSyntax, InvalidValue
from scimledger.scim.patch import apply_patch
from scimledger.scim.paths import parse_attr_path
from scimledger.scim.schemas import (
    ENTERPRISE_USER_URN,
    GROUP_URN,
    USER_URN,
    canonical_path,
    find_attribute,
    resolve_urn,
)

ResourceType = Literal["User", "Group"]
CORE = {"User": USER_URN, "Group": GROUP_URN}
DROPPED = {"schemas", "password"}
MAX_VALUE_LENGTH = 1024  # userName, displayName, externalId, email values: looked up through indexes


def _check_length(name: str, value: Any) -> None:
    if isinstance(value, str) and len(value) > MAX_VALUE_LENGTH:
        raise InvalidValue(f"{name} is longer than {MAX_VALUE_LENGTH} characters")


@dataclass(frozen=True)
class UserInput:
    """``active`` None means unassigned (RFC 7643 §2.5); only that is kept in ``profile``
    (``"active": null``), since true/false is the member's status, recorded by its own events."""

    user_name: str
    active: bool | None
    profile: dict[str, Any]


@dataclass(frozen=True)
class GroupInput:
    display_name: str
    external_id: str | None
    member_ids: tuple[str, ...] | None  # None: the body had no ``members``
    member_displays: dict[str, str] = field(default_factory=dict)


def parse_bool(value: Any, name: str) -> bool:
    """A boolean, also as the strings "True"/"False" that Microsoft Entra sends."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidValue(f"{name} must be a boolean")


@lru_cache(maxsize=4096)
def _writable(resource_type: ResourceType, key: str) -> bool:
    if resolve_urn(resource_type, key).lower() == ENTERPRISE_USER_URN.lower():
        return resource_type == "User"
    try:
        path = parse_attr_path(key)
    except InvalidPath:
        return False
    if canonical_path(resource_type, path) is None:
        return False
    attr = find_attribute(resource_type, path)
    return attr is not None and attr.mutability != "readOnly"


def normalise(body: Any, resource_type: ResourceType) -> dict[str, Any]:
    """The stored form of a POST/PUT body (module docstring); ``schemas`` must name the core schema."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (
        not isinstance(schemas, list)
        or CORE[resource_type].lower() not in {resolve_urn(resource_type, str(s)).lower() for s in schemas}
    ):
        raise InvalidSyntax(f"schemas must include {CORE[resource_type]}")
    value = {k: v for k, v in body.items() if k.lower() not in DROPPED and _writable(resource_type, k)}
    start: dict[str, Any] = {"schemas": [CORE[resource_type]]}
    if not value:
        return {}
    result = apply_patch(start, [{"op": "add", "value": value}], resource_type)
    result.pop("schemas", None)
    for key in ("userName", "displayName", "externalId"):
        _check_length(key, result.get(key))
    for email in result.get("emails") or []:
        _check_length("emails.value", email.get("value") if isinstance(email, dict) else None)
    return result


def user_from_body(body: Any, *, default_active: bool | None = True) -> UserInput:
    """RFC 7644 §3.3/§3.5.1: a User body as userName, active and the stored profile. POST and PUT default
    ``active`` to true (seed 004: "defaults to true on creation"); after a PATCH that removed it, it stays
    unassigned (``default_active=None``, RFC 7644 §3.5.2.2)."""
    profile = normalise(body, "User")
    user_name = profile.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise InvalidValue("userName is required and must be a non-empty string")
    active = profile.pop("active") if "active" in profile else default_active
    if active is None:
        profile["active"] = None
    profile["userName"] = user_name.strip()
    return UserInput(user_name=user_name.strip(), active=active, profile=profile)


def member_ids(members: Any) -> tuple[str, ...]:
    """The ``value`` of each member object (RFC 7643 §4.2); ``$ref``/``display``/``type`` are ignored."""
    if not isinstance(members, list):
        raise InvalidValue("members must be a list")
    ids: list[str] = []
    for member in members:
        if not isinstance(member, dict) or not isinstance(member.get("value"), str) or not member["value"]:
            raise InvalidValue("each member must be an object with a string value")
        ids.append(member["value"])
    return tuple(dict.fromkeys(ids))


def member_displays(members: Any) -> dict[str, str]:
    """The ``display`` a client gave each member: immutable, so kept as set on creation (RFC 7643 §2.2)."""
    if not isinstance(members, list):
        return {}
    return {
        m["value"]: m["display"]
        for m in members
        if isinstance(m, dict) and isinstance(m.get("value"), str) and isinstance(m.get("display"), str)
    }


def group_from_body(body: Any) -> GroupInput:
    """RFC 7644 §3.3/§3.5.1: a Group body: displayName (required), externalId, members."""
    if isinstance(body, dict):
        members = next((v for k, v in body.items() if k.lower() == "members"), None)
        has_members = any(k.lower() == "members" for k in body)
        body = {k: v for k, v in body.items() if k.lower() != "members"}
    else:
        members, has_members = None, False
    attributes = normalise(body, "Group")
    display_name = attributes.get("displayName")
    if not isinstance(display_name, str) or not display_name.strip():
        raise InvalidValue("displayName is required and must be a non-empty string")
    external_id = attributes.get("externalId")
    ids = member_ids(members if members is not None else []) if has_members else None
    return GroupInput(
        display_name=display_name,
        external_id=external_id,
        member_ids=ids,
        member_displays=member_displays(members),
    )
