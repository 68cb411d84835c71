"""Unit tests for scimledger.scim.discovery: the ServiceProviderConfig (RFC 7643 §5, RFC 9865 §4)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scimledger.scim import listing
from scimledger.scim.discovery import DEFAULT_COUNT, MAX_COUNT, service_provider_config

RFC = Path(__file__).parents[1] / "fixtures" / "rfc"
RFC_EXAMPLE: dict[str, Any] = json.loads((RFC / "service_provider_config_7643_8.5.json").read_text())[
    "example"
]
RFC_PAGINATION: dict[str, Any] = json.loads((RFC / "cursor_9865.json").read_text())[
    "serviceProviderConfigPagination"
]
BASE = "https://scim.example.com/scim/v2"


def config(**overrides: Any) -> dict[str, Any]:
    arguments: dict[str, Any] = {
        "bulk_max_operations": 1000,
        "bulk_max_payload_size": 1_048_576,
        "filter_max_results": 200,
        **overrides,
    }
    return service_provider_config(BASE, **arguments)


def shape(value: Any) -> Any:
    """The JSON shape of ``value``: member names and value types, with list elements merged."""
    if isinstance(value, dict):
        return {key: shape(item) for key, item in value.items()}
    if isinstance(value, list):
        merged: dict[str, Any] = {}
        for item in value:
            merged.update(shape(item) if isinstance(item, dict) else {"": type(item).__name__})
        return [merged]
    return type(value).__name__


# --------------------------------------------------------------------------------------------------
# Against the RFC examples


# Members of the RFC 7643 §8.5 example this server leaves out: a second scheme, optional meta members.
NOT_ADVERTISED = {
    "meta": {"created", "lastModified", "version"},
    "authenticationSchemes": {"documentationUri"},
}


@pytest.mark.parametrize("member", sorted(RFC_EXAMPLE))
def test_has_every_member_of_the_rfc_7643_example_with_its_type(member: str) -> None:
    ours = shape(config(documentation_uri="https://docs.example.com/scim")[member])
    theirs = shape(RFC_EXAMPLE[member])
    if isinstance(theirs, dict):
        theirs = {k: v for k, v in theirs.items() if k not in NOT_ADVERTISED.get(member, set())}
    if isinstance(theirs, list):
        theirs = [{k: v for k, v in theirs[0].items() if k not in NOT_ADVERTISED.get(member, set())}]

    assert ours == theirs


def test_pagination_has_the_rfc_9865_members_with_their_types() -> None:
    assert shape(config()["pagination"]) == shape(RFC_PAGINATION)


# --------------------------------------------------------------------------------------------------
# What it says


def test_schemas() -> None:
    assert config()["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"]


def test_features() -> None:
    doc = config()

    assert doc["patch"] == {"supported": True}
    assert doc["changePassword"] == {"supported": False}
    assert doc["sort"] == {"supported": True}
    assert doc["etag"] == {"supported": True}


def test_bulk_limits() -> None:
    assert config(bulk_max_operations=7, bulk_max_payload_size=4096)["bulk"] == {
        "supported": True,
        "maxOperations": 7,
        "maxPayloadSize": 4096,
    }


@pytest.mark.parametrize(("operations", "payload"), [(0, 4096), (10, 0)])
def test_bulk_with_a_zero_limit_is_not_supported(operations: int, payload: int) -> None:
    assert config(bulk_max_operations=operations, bulk_max_payload_size=payload)["bulk"]["supported"] is False


def test_filter_max_results() -> None:
    assert config(filter_max_results=200)["filter"] == {"supported": True, "maxResults": 200}


def test_filter_max_results_never_exceeds_the_largest_page() -> None:
    assert config(filter_max_results=10_000)["filter"]["maxResults"] == MAX_COUNT


def test_one_oauth_bearer_token_scheme() -> None:
    assert config()["authenticationSchemes"] == [
        {
            "type": "oauthbearertoken",
            "name": "OAuth Bearer Token",
            "description": "Authentication scheme using the OAuth Bearer Token Standard",
            "specUri": "https://www.rfc-editor.org/info/rfc6750",
            "primary": True,
        }
    ]


def test_pagination() -> None:
    assert config()["pagination"] == {
        "cursor": True,
        "index": True,
        "defaultPaginationMethod": "index",
        "defaultPageSize": 100,
        "maxPageSize": 500,
        "cursorTimeout": 3600,
    }


def test_pagination_matches_what_listing_enforces() -> None:
    pagination = config()["pagination"]

    assert pagination["defaultPageSize"] == DEFAULT_COUNT == listing.query_from_params({}).count
    assert pagination["maxPageSize"] == MAX_COUNT == listing.query_from_params({"count": "100000"}).count
    assert pagination["cursorTimeout"] == listing.CURSOR_TTL_SECONDS


def test_cursor_timeout_can_be_set() -> None:
    assert config(cursor_timeout=600)["pagination"]["cursorTimeout"] == 600


def test_meta() -> None:
    assert config()["meta"] == {
        "resourceType": "ServiceProviderConfig",
        "location": f"{BASE}/ServiceProviderConfig",
    }


def test_location_ignores_a_trailing_slash() -> None:
    doc = service_provider_config(
        BASE + "/", bulk_max_operations=1, bulk_max_payload_size=1, filter_max_results=1
    )

    assert doc["meta"]["location"] == f"{BASE}/ServiceProviderConfig"


def test_documentation_uri_only_when_given() -> None:
    assert "documentationUri" not in config()
    assert (
        config(documentation_uri="https://docs.example.com")["documentationUri"] == "https://docs.example.com"
    )


def test_no_id() -> None:
    assert "id" not in config()


def test_is_json_serialisable() -> None:
    assert json.loads(json.dumps(config())) == config()


@pytest.mark.parametrize(
    "overrides",
    [
        {"bulk_max_operations": -1},
        {"bulk_max_payload_size": -1},
        {"filter_max_results": 0},
        {"cursor_timeout": 0},
    ],
)
def test_invalid_limits(overrides: dict[str, Any]) -> None:
    with pytest.raises(ValueError):
        config(**overrides)
