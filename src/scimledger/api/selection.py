"""``attributes`` and ``excludedAttributes`` on a request (RFC 7644 §3.9), for single reads and lists alike:
which attributes to return, and whether an expensive one (a group's members) needs loading at all."""

from __future__ import annotations

from typing import Any, Literal

from starlette.requests import Request

from scimledger.scim import attributes as attrs

ResourceType = Literal["User", "Group"]


def _attribute_params(request: Request) -> tuple[list[str] | None, list[str] | None]:
    query = getattr(request.state, "list_query", None)
    if query is not None:
        return query.attributes, query.excluded_attributes
    params = request.query_params
    return attrs.parse_attribute_list(params.get("attributes")), attrs.parse_attribute_list(
        params.get("excludedAttributes")
    )


def project(request: Request, resource: dict[str, Any], resource_type: ResourceType) -> dict[str, Any]:
    """RFC 7644 §3.9: apply ``attributes``/``excludedAttributes`` to one resource."""
    attributes, excluded = _attribute_params(request)
    if attributes is None and excluded is None:
        return resource
    return attrs.select_attributes(resource, resource_type, attributes=attributes, excluded=excluded)


def selects_everything(request: Request) -> bool:
    """Neither ``attributes`` nor ``excludedAttributes``: the default set is returned as rendered."""
    return _attribute_params(request) == (None, None)


def wants(request: Request, resource_type: ResourceType, name: str) -> bool:
    attributes, excluded = _attribute_params(request)
    return attrs.wants_attribute(resource_type, attributes, excluded, name)
