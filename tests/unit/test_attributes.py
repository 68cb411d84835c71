"""Unit tests for scimledger.scim.attributes: ``attributes``/``excludedAttributes`` (RFC 7644 §3.9)."""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scimledger.scim.attributes import parse_attribute_list, select_attributes, wants_attribute

FIXTURE = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "rfc" / "attributes_7644_3.9.json").read_text(encoding="utf-8")
)
CASES: list[dict[str, Any]] = FIXTURE["cases"]
USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def group() -> dict[str, Any]:
    return {
        "schemas": [GROUP],
        "id": "e9e30dba-f08f-4109-8486-d5c6a331660a",
        "displayName": "Tour Guides",
        "members": [
            {"value": "2819c223-7f76-453a-919d-413861904646", "display": "Babs Jensen", "type": "User"},
            {"value": "902c246b-6245-4190-8e05-00816be7344a", "display": "Mandy Pepperidge", "type": "User"},
        ],
        "meta": {"resourceType": "Group", "lastModified": "2011-05-13T04:42:34Z"},
    }


def user() -> dict[str, Any]:
    return copy.deepcopy(FIXTURE["resources"]["rfc7643_8.3"])


# --------------------------------------------------------------------------------------------------
# The fixture: the RFC 7644 §3.9 example and cases over the RFC 7643 §8.3 User


@pytest.mark.parametrize("case", CASES, ids=[case["name"] for case in CASES])
def test_rfc_fixture(case: dict[str, Any]) -> None:
    resource = FIXTURE["resources"][case["resource"]]

    out = select_attributes(
        resource,
        "User",
        attributes=parse_attribute_list(case.get("attributes")),
        excluded=parse_attribute_list(case.get("excludedAttributes")),
    )

    assert out == case["expected"]


def test_fixture_holds_the_rfc_example() -> None:
    assert [case["attributes"] for case in CASES if case.get("verbatim")] == ["userName"]


# --------------------------------------------------------------------------------------------------
# returned: always / never / default / request (RFC 7643 §7)


def test_attributes_keep_schemas_and_id_but_not_meta() -> None:
    out = select_attributes(user(), "User", attributes=["displayName"], excluded=None)

    assert out == {"schemas": [USER, ENTERPRISE], "id": user()["id"], "displayName": "Babs Jensen"}


def test_excluded_cannot_remove_id() -> None:
    out = select_attributes(group(), "Group", attributes=None, excluded=["id"])

    assert out["id"] == group()["id"]


def test_excluded_cannot_remove_schemas() -> None:
    out = select_attributes(group(), "Group", attributes=None, excluded=["schemas"])

    assert out["schemas"] == [GROUP]


def test_password_is_never_returned_by_default() -> None:
    assert "password" not in select_attributes(user(), "User", attributes=None, excluded=None)


def test_password_is_never_returned_when_requested() -> None:
    assert "password" not in select_attributes(user(), "User", attributes=["password"], excluded=None)


def test_default_attributes_are_returned_without_parameters() -> None:
    expected = {key: value for key, value in user().items() if key != "password"}

    assert select_attributes(user(), "User", attributes=None, excluded=None) == expected


def test_request_attributes_only_when_named(monkeypatch: pytest.MonkeyPatch) -> None:
    from dataclasses import replace

    from scimledger.scim import schemas

    nick = next(attr for attr in schemas.USER_SCHEMA.attributes if attr.name == "nickName")
    requested = replace(
        schemas.USER_SCHEMA,
        attributes=tuple(
            replace(attr, returned="request") if attr is nick else attr
            for attr in schemas.USER_SCHEMA.attributes
        ),
    )
    rtype = replace(schemas.RESOURCE_TYPES["User"], schema=requested)
    monkeypatch.setitem(schemas.RESOURCE_TYPES, "User", rtype)

    assert "nickName" not in select_attributes(user(), "User", attributes=None, excluded=None)
    assert "nickName" not in select_attributes(user(), "User", attributes=None, excluded=["title"])
    assert select_attributes(user(), "User", attributes=["nickName"], excluded=None)["nickName"] == "Babs"


# --------------------------------------------------------------------------------------------------
# Names (RFC 7644 §3.10, RFC 7643 §2.1)


@pytest.mark.parametrize(
    "name", ["displayname", "DISPLAYNAME", f"{USER}:displayName", f"{USER.upper()}:DisplayName"]
)
def test_names_are_case_insensitive_and_may_carry_the_core_uri(name: str) -> None:
    out = select_attributes(user(), "User", attributes=[name], excluded=None)

    assert out["displayName"] == "Babs Jensen"


def test_extension_uri_is_case_insensitive() -> None:
    out = select_attributes(user(), "User", attributes=[f"{ENTERPRISE.upper()}:DEPARTMENT"], excluded=None)

    assert out[ENTERPRISE] == {"department": "Tour Operations"}


def test_output_keeps_the_resource_spelling_of_keys() -> None:
    out = select_attributes(
        {"schemas": [GROUP], "id": "g", "DisplayName": "x"},
        "Group",
        attributes=["displayName"],
        excluded=None,
    )

    assert out == {"schemas": [GROUP], "id": "g", "DisplayName": "x"}


@pytest.mark.parametrize(
    "name", ["noSuchAttribute", "name.noSuchSub", "userName.sub", 'emails[type eq "work"]', "a b", ""]
)
def test_unknown_or_malformed_names_are_ignored(name: str) -> None:
    out = select_attributes(user(), "User", attributes=[name, "userName"], excluded=None)

    assert out == {"schemas": [USER, ENTERPRISE], "id": user()["id"], "userName": "bjensen@example.com"}


def test_unknown_excluded_names_change_nothing() -> None:
    out = select_attributes(group(), "Group", attributes=None, excluded=["noSuchAttribute", "userName"])

    assert out == group()


def test_keys_outside_the_schema_match_by_name() -> None:
    resource = {**group(), "urn:example:custom": {"x": 1}}

    assert "urn:example:custom" in select_attributes(resource, "Group", attributes=None, excluded=None)
    assert "urn:example:custom" not in select_attributes(
        resource, "Group", attributes=["displayName"], excluded=None
    )
    assert "urn:example:custom" not in select_attributes(
        resource, "Group", attributes=None, excluded=["urn:example:custom"]
    )


# --------------------------------------------------------------------------------------------------
# Sub-attributes and emptied values


def test_sub_attribute_selection_in_a_multi_valued_attribute() -> None:
    out = select_attributes(group(), "Group", attributes=["members.value"], excluded=None)

    assert out["members"] == [{"value": m["value"]} for m in group()["members"]]


def test_parent_and_sub_attribute_named_keeps_the_whole_parent() -> None:
    out = select_attributes(user(), "User", attributes=["name", "name.givenName"], excluded=None)

    assert out["name"] == user()["name"]


def test_excluded_sub_attribute_is_removed_from_every_value() -> None:
    out = select_attributes(group(), "Group", attributes=None, excluded=["members.display"])

    assert out["members"] == [{"value": m["value"], "type": "User"} for m in group()["members"]]


def test_attribute_emptied_by_exclusion_is_dropped() -> None:
    resource = {**group(), "meta": {"lastModified": "2011-05-13T04:42:34Z"}}

    assert "meta" not in select_attributes(resource, "Group", attributes=None, excluded=["meta.lastModified"])


def test_elements_emptied_by_selection_are_dropped() -> None:
    resource = {"schemas": [USER], "id": "u", "emails": [{"value": "a@example.com"}, {"type": "home"}]}

    out = select_attributes(resource, "User", attributes=["emails.value"], excluded=None)

    assert out["emails"] == [{"value": "a@example.com"}]


def test_extension_emptied_by_selection_is_dropped() -> None:
    resource = {"schemas": [USER, ENTERPRISE], "id": "u", ENTERPRISE: {"department": "Sales"}}

    out = select_attributes(resource, "User", attributes=[f"{ENTERPRISE}:manager"], excluded=None)

    assert out == {"schemas": [USER, ENTERPRISE], "id": "u"}


def test_values_already_empty_are_kept() -> None:
    resource = {**group(), "members": []}

    assert select_attributes(resource, "Group", attributes=None, excluded=None)["members"] == []


def test_input_is_not_modified_and_output_shares_nothing() -> None:
    resource = group()

    out = select_attributes(resource, "Group", attributes=None, excluded=None)
    out["members"][0]["value"] = "changed"
    out["schemas"].append("x")

    assert resource == group()


def test_both_parameters_apply_attributes_then_exclusion() -> None:
    out = select_attributes(user(), "User", attributes=["name"], excluded=["name.givenName"])

    assert "givenName" not in out["name"]
    assert out["name"]["familyName"] == "Jensen"


def test_unknown_resource_type_is_a_programming_error() -> None:
    with pytest.raises(ValueError):
        select_attributes({}, "Schema", attributes=None, excluded=None)  # type: ignore[arg-type]


# --------------------------------------------------------------------------------------------------
# parse_attribute_list


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, None),
        ("", None),
        (" , ,", None),
        ([], None),
        ("userName", ["userName"]),
        ("userName,name.givenName", ["userName", "name.givenName"]),
        (" userName , emails ", ["userName", "emails"]),
        (["displayName", "userName"], ["displayName", "userName"]),
        (["displayName,userName", " emails "], ["displayName", "userName", "emails"]),
        (f"{ENTERPRISE}:department,userName", [f"{ENTERPRISE}:department", "userName"]),
    ],
)
def test_parse_attribute_list(value: str | list[str] | None, expected: list[str] | None) -> None:
    assert parse_attribute_list(value) == expected


# --------------------------------------------------------------------------------------------------
# wants_attribute


@pytest.mark.parametrize(
    ("attributes", "excluded", "name", "wanted"),
    [
        (None, None, "members", True),
        (None, ["members"], "members", False),
        (None, ["MEMBERS"], "members", False),
        (["displayName"], None, "members", False),
        (["members"], None, "members", True),
        (["members.value"], None, "members", True),
        (["members.value"], None, "members.value", True),
        (["members.value"], None, "members.display", False),
        (None, ["members.display"], "members", True),
        (None, ["members.display"], "members.display", False),
        (None, ["displayName"], "members", True),
        (None, ["id"], "id", True),
        (["displayName"], None, "id", True),
        (["displayName"], None, "meta", False),
    ],
)
def test_wants_attribute_for_groups(
    attributes: list[str] | None, excluded: list[str] | None, name: str, wanted: bool
) -> None:
    assert wants_attribute("Group", attributes, excluded, name) is wanted


@pytest.mark.parametrize(
    ("attributes", "excluded", "name", "wanted"),
    [
        (None, None, "groups", True),
        (["userName"], None, "groups", False),
        (None, ["groups"], "groups", False),
        (["groups.display"], None, "groups", True),
        (None, None, "password", False),
        (["password"], None, "password", False),
        (None, None, ENTERPRISE, True),
        ([f"{ENTERPRISE}:department"], None, ENTERPRISE, True),
        (["userName"], None, ENTERPRISE, False),
        (None, [ENTERPRISE], ENTERPRISE, False),
        (None, [ENTERPRISE], f"{ENTERPRISE}:manager", False),
        ([f"{ENTERPRISE}:manager"], None, f"{ENTERPRISE}:manager", True),
        (None, None, "noSuchAttribute", True),
        (["userName"], None, "noSuchAttribute", False),
    ],
)
def test_wants_attribute_for_users(
    attributes: list[str] | None, excluded: list[str] | None, name: str, wanted: bool
) -> None:
    assert wants_attribute("User", attributes, excluded, name) is wanted


@pytest.mark.parametrize(
    ("attributes", "excluded"),
    [
        (None, None),
        (["displayName"], None),
        (None, ["members"]),
        (["members.value"], None),
        (None, ["members.type"]),
    ],
)
def test_wants_attribute_agrees_with_select_attributes(
    attributes: list[str] | None, excluded: list[str] | None
) -> None:
    out = select_attributes(group(), "Group", attributes=attributes, excluded=excluded)

    assert ("members" in out) is wants_attribute("Group", attributes, excluded, "members")
