"""Rendering SCIM resources (RFC 7643 §3 common attributes, §4.1 User, §4.2 Group, §4.3 enterprise).

Pure functions from stored attributes to the JSON a client sees: ``schemas``, ``id``, the attributes,
and ``meta`` (resourceType, created, lastModified, location, version).
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

USER_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:User"
ENTERPRISE_SCHEMA = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
GROUP_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:Group"
LIST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:ListResponse"


def timestamp(value: datetime) -> str:
    """RFC 7643 §2.3.5 dateTime, in UTC with milliseconds."""
    return value.astimezone(UTC).isoformat(timespec="milliseconds").replace("+00:00", "Z")


def etag(version: int) -> str:
    """RFC 7644 §3.14: a weak entity tag from the stream version."""
    return f'W/"{version}"'


def meta(
    resource_type: str, created: datetime, last_modified: datetime, location: str, version: int
) -> dict[str, Any]:
    """RFC 7643 §3.1 ``meta``."""
    return {
        "resourceType": resource_type,
        "created": timestamp(created),
        "lastModified": timestamp(last_modified),
        "location": location,
        "version": etag(version),
    }


def render_user(
    *,
    user_id: str,
    profile: dict[str, Any],
    active: bool | None,
    groups: list[dict[str, Any]],
    created: datetime,
    last_modified: datetime,
    version: int,
    base_url: str,
) -> dict[str, Any]:
    """RFC 7643 §4.1: a User with its computed ``groups`` (read-only); ``active`` None is unassigned."""
    schemas = [USER_SCHEMA]
    if ENTERPRISE_SCHEMA in profile:
        schemas.append(ENTERPRISE_SCHEMA)
    out: dict[str, Any] = {"schemas": schemas, "id": user_id}
    out.update(profile)
    out.pop("active", None)
    if active is not None:
        out["active"] = active
    if groups:
        out["groups"] = groups
    out["meta"] = meta("User", created, last_modified, f"{base_url}/Users/{user_id}", version)
    return out


def list_response(resources: list[dict[str, Any]], total: int, start_index: int) -> dict[str, Any]:
    """RFC 7644 §3.4.2: a ListResponse page."""
    return {
        "schemas": [LIST_SCHEMA],
        "totalResults": total,
        "startIndex": start_index,
        "itemsPerPage": len(resources),
        "Resources": resources,
    }
