"""Reading a User from a request body (RFC 7644 §3.3, RFC 7643 §4.1).

Splits a body into ``userName``, ``active`` and the profile that is stored: read-only attributes (id, meta,
groups) are ignored (RFC 7644 §3.3), ``schemas`` is checked, and ``password`` is dropped: it is never stored,
logged or returned.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from scimledger.scim.errors import InvalidSyntax, InvalidValue
from scimledger.scim.resources import USER_SCHEMA

IGNORED = {"id", "meta", "groups", "schemas", "password", "active"}


@dataclass(frozen=True)
class UserInput:
    user_name: str
    active: bool
    profile: dict[str, Any]


def parse_bool(value: Any, name: str) -> bool:
    """A boolean, also as the strings "True"/"False" that Microsoft Entra sends."""
    if isinstance(value, bool):
        return value
    if isinstance(value, str) and value.lower() in ("true", "false"):
        return value.lower() == "true"
    raise InvalidValue(f"{name} must be a boolean")


def user_from_body(body: Any) -> UserInput:
    """RFC 7644 §3.3: validate a User body and split it (see the module docstring)."""
    if not isinstance(body, dict):
        raise InvalidSyntax("the request body must be a JSON object")
    schemas = body.get("schemas")
    if schemas is not None and (not isinstance(schemas, list) or USER_SCHEMA not in schemas):
        raise InvalidSyntax(f"schemas must include {USER_SCHEMA}")
    user_name = body.get("userName")
    if not isinstance(user_name, str) or not user_name.strip():
        raise InvalidValue("userName is required and must be a non-empty string")
    active = parse_bool(body.get("active", True), "active")
    profile = {k: v for k, v in body.items() if k not in IGNORED and v is not None}
    profile["userName"] = user_name.strip()
    return UserInput(user_name=user_name.strip(), active=active, profile=profile)
