"""Tests for scimledger.scim.patch: RFC 7644 §3.5.2 PATCH plus the request shapes Entra ID and Okta send.

Each test is named for one behaviour and fails if that behaviour breaks. The Entra requests are the
ones in Microsoft's "Develop and plan provisioning for a SCIM endpoint" tutorial and its "Known issues
... SCIM 2.0 protocol compliance" page; the Okta ones are from Okta's SCIM 2.0 protocol reference.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any

import pytest

from scimledger.scim.errors import InvalidPath, InvalidSyntax, InvalidValue, Mutability, NoTarget
from scimledger.scim.patch import PATCH_OP_SCHEMA, apply_patch, validate_patch_request

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
USER_ID = "6764549bef60420686bc"
GROUP_ID = "abf4dd94-a4c0-4f67-89c9-76b03340cb9b"
MEMBER_A = "23a35c27-23d3-4c03-b4c5-6443c09e7173"
MEMBER_B = "89bb1940-b905-4575-9e7f-6f887cfb368e"
RFC_EXAMPLES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "rfc" / "patch_7644_3.5.2.json").read_text(encoding="utf-8")
)


def user(**attrs: Any) -> dict[str, Any]:
    return {
        "schemas": [USER_URN],
        "id": USER_ID,
        "userName": "bjensen@example.com",
        "name": {"givenName": "Barbara", "familyName": "Jensen"},
        "active": True,
        "emails": [{"value": "bjensen@example.com", "type": "work", "primary": True}],
        **attrs,
    }


def group(*member_ids: str, **attrs: Any) -> dict[str, Any]:
    out: dict[str, Any] = {"schemas": [GROUP_URN], "id": GROUP_ID, "displayName": "Test SCIMv2", **attrs}
    if member_ids:
        out["members"] = [{"value": member, "display": f"user {member[:4]}"} for member in member_ids]
    return out


def patch_user(resource: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    return apply_patch(resource, list(operations), "User")


def patch_group(resource: dict[str, Any], *operations: dict[str, Any]) -> dict[str, Any]:
    return apply_patch(resource, list(operations), "Group")


def body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)}


def member_ids(resource: dict[str, Any]) -> list[str]:
    return [member["value"] for member in resource.get("members", [])]


# --------------------------------------------------------------------------------------------------
# validate_patch_request


def test_validate_returns_operations_with_lowercased_op() -> None:
    ops = validate_patch_request(
        body({"op": "Replace", "path": "displayName", "value": "x"}, {"op": "Remove", "path": "title"})
    )
    assert ops == [{"op": "replace", "path": "displayName", "value": "x"}, {"op": "remove", "path": "title"}]


@pytest.mark.parametrize(
    "schemas", [None, [], ["urn:ietf:params:scim:api:messages:2.0:ListResponse"], "PatchOp"]
)
def test_validate_requires_patchop_schema(schemas: Any) -> None:
    with pytest.raises(InvalidSyntax):
        validate_patch_request({"schemas": schemas, "Operations": [{"op": "remove", "path": "title"}]})


@pytest.mark.parametrize("request_body", [None, [], "PATCH", 3])
def test_validate_rejects_a_body_that_is_not_an_object(request_body: Any) -> None:
    with pytest.raises(InvalidSyntax):
        validate_patch_request(request_body)


@pytest.mark.parametrize("operations", [None, [], {}, "add", {"op": "add"}])
def test_validate_requires_a_non_empty_operations_list(operations: Any) -> None:
    with pytest.raises(InvalidSyntax):
        validate_patch_request({"schemas": [PATCH_OP_SCHEMA], "Operations": operations})


@pytest.mark.parametrize("operation", ["add", None, ["op", "add"]])
def test_validate_requires_each_operation_to_be_an_object(operation: Any) -> None:
    with pytest.raises(InvalidSyntax):
        validate_patch_request(body(operation))


@pytest.mark.parametrize("op", ["delete", "copy", "move", "", None, 1])
def test_validate_rejects_an_unknown_op(op: Any) -> None:
    with pytest.raises(InvalidSyntax):
        validate_patch_request(body({"op": op, "path": "title", "value": "x"}))


@pytest.mark.parametrize("op", ["add", "replace"])
def test_validate_requires_a_value_for_add_and_replace(op: str) -> None:
    with pytest.raises(InvalidValue):
        validate_patch_request(body({"op": op, "path": "title"}))


def test_remove_without_path_is_no_target() -> None:
    # RFC 7644 §3.5.2.2: "If "path" is unspecified, the operation fails with ... "noTarget"."
    with pytest.raises(NoTarget):
        validate_patch_request(body({"op": "remove"}))
    with pytest.raises(NoTarget):
        patch_group(group(MEMBER_A), {"op": "remove", "value": [{"value": MEMBER_A}]})


# --------------------------------------------------------------------------------------------------
# op names, attribute names


@pytest.mark.parametrize("op", ["add", "Add", "ADD", "replace", "Replace", "REPLACE"])
def test_op_is_case_insensitive_for_add_and_replace(op: str) -> None:
    assert patch_user(user(), {"op": op, "path": "title", "value": "Tour Guide"})["title"] == "Tour Guide"


@pytest.mark.parametrize("op", ["remove", "Remove", "REMOVE"])
def test_op_is_case_insensitive_for_remove(op: str) -> None:
    assert "title" not in patch_user(user(title="Tour Guide"), {"op": op, "path": "title"})


def test_attribute_names_are_case_insensitive_and_results_use_canonical_names() -> None:
    result = patch_user(
        user(),
        {"op": "replace", "path": "USERNAME", "value": "babs@example.com"},
        {"op": "add", "path": "displayname", "value": "Babs"},
        {"op": "replace", "path": "NAME.GIVENNAME", "value": "Barb"},
        {"op": "replace", "value": {"NickName": "B", "EMAILS": [{"VALUE": "b@example.com", "Type": "home"}]}},
    )
    assert result["userName"] == "babs@example.com"
    assert result["displayName"] == "Babs"
    assert result["name"]["givenName"] == "Barb"
    assert result["nickName"] == "B"
    assert result["emails"] == [{"value": "b@example.com", "type": "home"}]
    assert not {"USERNAME", "displayname", "NickName", "EMAILS"} & result.keys()


# --------------------------------------------------------------------------------------------------
# add (RFC 7644 §3.5.2.1)


def test_add_without_path_adds_each_attribute_of_the_value() -> None:
    result = patch_user(user(), {"op": "add", "value": {"title": "Tour Guide", "nickName": "Babs"}})
    assert (result["title"], result["nickName"]) == ("Tour Guide", "Babs")


def test_add_without_path_accepts_paths_as_keys() -> None:
    # Entra sends path-less values keyed by paths, including URN-qualified extension attributes.
    result = patch_user(
        user(),
        {
            "op": "Add",
            "value": {
                "name.givenName": "John",
                "name.familyName": "Doe",
                f"{ENTERPRISE}:department": "HR",
                "displayName": "John Doe",
            },
        },
    )
    assert result["name"] == {"givenName": "John", "familyName": "Doe"}
    assert result[ENTERPRISE] == {"department": "HR"}
    assert result["displayName"] == "John Doe"


def test_add_without_path_accepts_the_extension_urn_as_a_key() -> None:
    result = patch_user(
        user(), {"op": "add", "value": {ENTERPRISE: {"department": "HR", "employeeNumber": "701984"}}}
    )
    assert result[ENTERPRISE] == {"department": "HR", "employeeNumber": "701984"}


def test_add_without_path_needs_an_object() -> None:
    with pytest.raises(InvalidValue):
        patch_user(user(), {"op": "add", "value": "Babs"})


def test_add_simple_attribute_with_path_sets_it() -> None:
    # Entra, "requests made to add a single-value string attribute", with and without the flag.
    for op in ("Add", "add"):
        assert patch_user(user(), {"op": op, "path": "nickName", "value": "Babs"})["nickName"] == "Babs"


def test_add_single_valued_attribute_replaces_its_value() -> None:
    # RFC 7644 §3.5.2.1: "If the target location specifies a single-valued attribute, the existing value
    # is replaced."
    assert patch_user(user(title="Guide"), {"op": "add", "path": "title", "value": "Lead"})["title"] == "Lead"


def test_add_multi_valued_appends_values() -> None:
    home = {"value": "babs@jensen.org", "type": "home"}
    result = patch_user(user(), {"op": "add", "path": "emails", "value": [home]})
    assert result["emails"] == [*user()["emails"], home]


def test_add_multi_valued_accepts_a_single_value() -> None:
    phone = {"value": "555-555-8377", "type": "work"}
    assert patch_user(user(), {"op": "add", "path": "phoneNumbers", "value": phone})["phoneNumbers"] == [
        phone
    ]


def test_add_multi_valued_skips_values_already_present() -> None:
    existing = user()["emails"][0]
    result = patch_user(user(), {"op": "add", "path": "emails", "value": [existing, existing]})
    assert result["emails"] == [existing]


def test_add_group_member_already_present_is_a_no_op() -> None:
    before = group(MEMBER_A)
    result = patch_group(
        before, {"op": "add", "path": "members", "value": [{"value": MEMBER_A, "display": "other"}]}
    )
    assert result == before


def test_add_complex_attribute_merges_sub_attributes() -> None:
    result = patch_user(user(), {"op": "add", "path": "name", "value": {"middleName": "Jane"}})
    assert result["name"] == {"givenName": "Barbara", "familyName": "Jensen", "middleName": "Jane"}


def test_add_sub_attribute_path_creates_the_complex_attribute() -> None:
    before = user()
    del before["name"]
    assert patch_user(before, {"op": "Add", "path": "name.givenName", "value": "Barbara"})["name"] == {
        "givenName": "Barbara"
    }


def test_add_members_to_an_empty_group() -> None:
    # Entra "Update Group [Add Members]": note the "$ref": null.
    result = patch_group(
        group(), {"op": "Add", "path": "members", "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}]}
    )
    assert result["members"] == [{"value": "f648f8d5ea4e4cd38e9c"}]


def test_ref_null_in_a_member_is_dropped() -> None:
    result = patch_group(
        group(), {"op": "add", "path": "members", "value": [{"value": MEMBER_A, "$ref": None}]}
    )
    assert result["members"] == [{"value": MEMBER_A}]


# --------------------------------------------------------------------------------------------------
# replace (RFC 7644 §3.5.2.3)


def test_replace_without_path_replaces_each_named_attribute() -> None:
    home = {"value": "babs@jensen.org", "type": "home"}
    result = patch_user(
        user(nickName="Barbara"), {"op": "replace", "value": {"emails": [home], "nickName": "Babs"}}
    )
    assert result["emails"] == [home]
    assert result["nickName"] == "Babs"
    assert result["name"] == user()["name"]


def test_replace_without_path_merges_complex_attributes() -> None:
    # RFC 7644 §3.5.2.3: "Sub-attributes that are not specified in the "value" parameter are left unchanged."
    result = patch_user(user(), {"op": "replace", "value": {"name": {"givenName": "Babs"}}})
    assert result["name"] == {"givenName": "Babs", "familyName": "Jensen"}


def test_okta_deactivate_user_is_a_path_less_replace_of_active() -> None:
    result = patch_user(user(), {"op": "replace", "value": {"active": False}})
    assert result["active"] is False


def test_replace_multi_valued_without_filter_replaces_all_values() -> None:
    # Okta's full push of a group's membership.
    result = patch_group(
        group(MEMBER_A, "11111111-0000-0000-0000-000000000000"),
        {
            "op": "replace",
            "path": "members",
            "value": [
                {"value": MEMBER_A, "display": "test.user@okta.local"},
                {"value": MEMBER_B, "display": "test.user@okta.local"},
            ],
        },
    )
    assert result["members"] == [
        {"value": MEMBER_A, "display": "test.user@okta.local"},
        {"value": MEMBER_B, "display": "test.user@okta.local"},
    ]


def test_replace_members_with_empty_list_removes_every_member() -> None:
    result = patch_group(group(MEMBER_A, MEMBER_B), {"op": "replace", "path": "members", "value": []})
    assert "members" not in result


def test_replace_with_null_unassigns_the_attribute() -> None:
    result = patch_user(user(title="Guide"), {"op": "replace", "path": "title", "value": None})
    assert "title" not in result
    assert "nickName" not in patch_user(user(nickName="B"), {"op": "replace", "value": {"nickName": None}})


def test_replace_with_empty_list_unassigns_the_attribute() -> None:
    assert "emails" not in patch_user(user(), {"op": "replace", "path": "emails", "value": []})


def test_replace_with_filter_replaces_matching_elements() -> None:
    home = {"value": "babs@jensen.org", "type": "home"}
    new_work = {"value": "babs@example.com", "type": "work"}
    result = patch_user(
        user(emails=[user()["emails"][0], home]),
        {"op": "replace", "path": 'emails[type eq "work"]', "value": new_work},
    )
    assert result["emails"] == [new_work, home]


def test_replace_with_filter_and_sub_attribute_sets_it_on_matching_elements() -> None:
    # Entra "Update User [Multi-valued properties]".
    result = patch_user(
        user(),
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "updatedEmail@microsoft.com"},
        {"op": "Replace", "path": "name.familyName", "value": "updatedFamilyName"},
    )
    assert result["emails"] == [{"value": "updatedEmail@microsoft.com", "type": "work", "primary": True}]
    assert result["name"] == {"givenName": "Barbara", "familyName": "updatedFamilyName"}


def test_replace_with_filter_and_sub_attribute_matching_nothing_adds_an_element() -> None:
    # Entra sends this for a user who has no work email yet, and expects one to be created.
    before = user(emails=[{"value": "babs@jensen.org", "type": "home"}])
    result = patch_user(
        before, {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "b@example.com"}
    )
    assert result["emails"] == [
        {"value": "babs@jensen.org", "type": "home"},
        {"type": "work", "value": "b@example.com"},
    ]


def test_add_with_filter_and_sub_attribute_matching_nothing_adds_an_element() -> None:
    # Entra also sends "Add" for the same purpose (Microsoft Q&A 1684621).
    before = user()
    del before["emails"]
    result = patch_user(
        before, {"op": "Add", "path": 'emails[type eq "work"].value', "value": "b@example.com"}
    )
    assert result["emails"] == [{"type": "work", "value": "b@example.com"}]


def test_add_with_filter_and_sub_attribute_sets_it_on_matching_elements() -> None:
    result = patch_user(
        user(), {"op": "Add", "path": 'emails[type eq "work"].value', "value": "new@example.com"}
    )
    assert result["emails"] == [{"value": "new@example.com", "type": "work", "primary": True}]


def test_replace_address_sub_attribute_matching_nothing_adds_a_work_address() -> None:
    result = patch_user(
        user(),
        {"op": "Replace", "path": 'addresses[type eq "work"].streetAddress', "value": "1010 Broadway Ave"},
    )
    assert result["addresses"] == [{"type": "work", "streetAddress": "1010 Broadway Ave"}]


def test_replace_with_filter_without_sub_attribute_matching_nothing_is_no_target() -> None:
    # RFC 7644 §3.5.2.3: a value filter with no record match is "noTarget".
    with pytest.raises(NoTarget):
        patch_user(
            user(), {"op": "replace", "path": 'emails[type eq "home"]', "value": {"value": "h@example.com"}}
        )


def test_filter_that_cannot_describe_an_element_matching_nothing_is_no_target() -> None:
    with pytest.raises(NoTarget):
        patch_user(user(), {"op": "replace", "path": 'emails[value co "nowhere"].type', "value": "other"})


# --------------------------------------------------------------------------------------------------
# remove (RFC 7644 §3.5.2.2)


def test_remove_attribute() -> None:
    assert "title" not in patch_user(user(title="Guide"), {"op": "remove", "path": "title"})


def test_remove_sub_attribute() -> None:
    assert patch_user(user(), {"op": "remove", "path": "name.givenName"})["name"] == {"familyName": "Jensen"}


def test_remove_with_filter_removes_matching_elements() -> None:
    # Okta's membership update: remove one member by filter, add another.
    result = patch_group(
        group(MEMBER_B),
        {"op": "remove", "path": f'members[value eq "{MEMBER_B}"]'},
        {"op": "add", "path": "members", "value": [{"value": MEMBER_A, "display": "test.user@okta.local"}]},
    )
    assert result["members"] == [{"value": MEMBER_A, "display": "test.user@okta.local"}]


def test_remove_members_with_value_list_removes_only_the_listed_members() -> None:
    # Entra "Update Group [Remove Members]": "Remove" on "members" with the ids in "value".
    result = patch_group(
        group(MEMBER_A, MEMBER_B, "f648f8d5ea4e4cd38e9c"),
        {"op": "Remove", "path": "members", "value": [{"$ref": None, "value": "f648f8d5ea4e4cd38e9c"}]},
    )
    assert member_ids(result) == [MEMBER_A, MEMBER_B]


def test_remove_members_path_without_value_removes_every_member() -> None:
    assert "members" not in patch_group(group(MEMBER_A, MEMBER_B), {"op": "remove", "path": "members"})


def test_remove_of_an_absent_attribute_is_a_no_op() -> None:
    before = user()
    assert patch_user(before, {"op": "remove", "path": "title"}) == before


def test_remove_with_filter_matching_nothing_is_a_no_op() -> None:
    before = group(MEMBER_A)
    assert patch_group(before, {"op": "remove", "path": 'members[value eq "no-such-id"]'}) == before


def test_remove_of_the_last_value_unassigns_the_attribute() -> None:
    result = patch_user(user(), {"op": "remove", "path": 'emails[type eq "work"]'})
    assert "emails" not in result


def test_remove_sub_attribute_of_filtered_elements() -> None:
    result = patch_user(user(), {"op": "remove", "path": 'emails[type eq "work"].primary'})
    assert result["emails"] == [{"value": "bjensen@example.com", "type": "work"}]


def test_sub_attribute_path_on_a_multi_valued_attribute_applies_to_every_value() -> None:
    home = {"value": "babs@jensen.org", "type": "home", "primary": False}
    result = patch_user(user(emails=[user()["emails"][0], home]), {"op": "remove", "path": "emails.primary"})
    assert result["emails"] == [
        {"value": "bjensen@example.com", "type": "work"},
        {"value": "babs@jensen.org", "type": "home"},
    ]
    with pytest.raises(NoTarget):
        patch_user(user(), {"op": "replace", "path": "addresses.country", "value": "US"})


# --------------------------------------------------------------------------------------------------
# Entra quirks: string booleans, manager


@pytest.mark.parametrize(
    ("sent", "stored"), [("False", False), ("True", True), ("false", False), ("TRUE", True)]
)
def test_string_booleans_become_booleans(sent: str, stored: bool) -> None:
    # Entra "Requests made to disable users" without the aadOptscim062020 flag: "value": "False".
    result = patch_user(user(active=not stored), {"op": "Replace", "path": "active", "value": sent})
    assert result["active"] is stored


def test_string_booleans_inside_complex_values_become_booleans() -> None:
    result = patch_user(
        user(), {"op": "add", "path": "roles", "value": [{"value": "admin", "primary": "True"}]}
    )
    assert result["roles"] == [{"value": "admin", "primary": True}]


def test_string_boolean_in_a_filter_path_matches_and_creates() -> None:
    result = patch_user(user(), {"op": "Replace", "path": 'roles[primary eq "True"].value', "value": "admin"})
    assert result["roles"] == [{"primary": True, "value": "admin"}]
    again = patch_user(result, {"op": "Replace", "path": 'roles[primary eq "True"].value', "value": "owner"})
    assert again["roles"] == [{"primary": True, "value": "owner"}]


def test_manager_as_a_bare_string_id_becomes_a_value_object() -> None:
    result = patch_user(
        user(),
        {
            "op": "Replace",
            "path": f"{ENTERPRISE}:manager",
            "value": "26118915-6090-4610-87e4-49d8ca9f808d",
        },
    )
    assert result[ENTERPRISE] == {"manager": {"value": "26118915-6090-4610-87e4-49d8ca9f808d"}}
    assert ENTERPRISE in result["schemas"]


def test_manager_as_a_value_object_is_accepted() -> None:
    result = patch_user(user(), {"op": "add", "path": f"{ENTERPRISE}:manager", "value": {"value": "m-1"}})
    assert result[ENTERPRISE]["manager"] == {"value": "m-1"}


def test_manager_sub_attribute_path_is_accepted() -> None:
    result = patch_user(user(), {"op": "replace", "path": f"{ENTERPRISE}:manager.value", "value": "m-2"})
    assert result[ENTERPRISE]["manager"] == {"value": "m-2"}


def test_unqualified_manager_with_a_one_element_list_is_accepted() -> None:
    # Entra tutorial, "Example 5. Request ... to update a user".
    ref = "http://example.com/scim/Users/00aa00aa-bb11-cc22-dd33-44ee44ee44ee"
    result = patch_user(
        user(),
        {
            "op": "Add",
            "path": "manager",
            "value": [{"$ref": ref, "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}],
        },
    )
    assert result[ENTERPRISE]["manager"] == {"$ref": ref, "value": "00aa00aa-bb11-cc22-dd33-44ee44ee44ee"}


def test_entra_replace_multiple_attributes_without_flag() -> None:
    result = patch_user(
        user(),
        {"op": "Replace", "path": "displayName", "value": "Pvlo"},
        {"op": "Replace", "path": 'emails[type eq "work"].value', "value": "TestBcwqnm@test.microsoft.com"},
        {"op": "Replace", "path": "name.givenName", "value": "Gtfd"},
        {"op": "Replace", "path": "name.familyName", "value": "Pkqf"},
        {"op": "Replace", "path": "externalId", "value": "Eqpj"},
        {"op": "Replace", "path": f"{ENTERPRISE}:employeeNumber", "value": "Eqpj"},
    )
    assert result["displayName"] == "Pvlo"
    assert result["emails"][0]["value"] == "TestBcwqnm@test.microsoft.com"
    assert result["name"] == {"givenName": "Gtfd", "familyName": "Pkqf"}
    assert result["externalId"] == "Eqpj"
    assert result[ENTERPRISE] == {"employeeNumber": "Eqpj"}


def test_entra_replace_multiple_attributes_with_flag() -> None:
    result = patch_user(
        user(),
        {"op": "replace", "path": 'emails[type eq "work"].value', "value": "TestMhvaes@test.microsoft.com"},
        {
            "op": "replace",
            "value": {
                "displayName": "Bjfe",
                "name.givenName": "Kkom",
                "name.familyName": "Unua",
                f"{ENTERPRISE}:employeeNumber": "Aklq",
            },
        },
    )
    assert result["emails"][0]["value"] == "TestMhvaes@test.microsoft.com"
    assert result["displayName"] == "Bjfe"
    assert result["name"] == {"givenName": "Kkom", "familyName": "Unua"}
    assert result[ENTERPRISE] == {"employeeNumber": "Aklq"}


def test_entra_remove_member_with_flag_uses_a_filter() -> None:
    member = "7f4bc1a3-285e-48ae-8202-5accb43efb0e"
    result = patch_group(group(member, MEMBER_A), {"op": "remove", "path": f'members[value eq "{member}"]'})
    assert member_ids(result) == [MEMBER_A]


# --------------------------------------------------------------------------------------------------
# Enterprise extension


def test_extension_attribute_goes_under_the_urn_and_into_schemas() -> None:
    result = patch_user(user(), {"op": "add", "path": f"{ENTERPRISE}:department", "value": "Tour Operations"})
    assert result[ENTERPRISE] == {"department": "Tour Operations"}
    assert result["schemas"] == [USER_URN, ENTERPRISE]


def test_removing_the_last_extension_attribute_drops_the_extension_and_its_urn() -> None:
    before = user(**{ENTERPRISE: {"department": "Ops"}})
    before["schemas"] = [USER_URN, ENTERPRISE]
    result = patch_user(before, {"op": "remove", "path": f"{ENTERPRISE}:department"})
    assert ENTERPRISE not in result
    assert result["schemas"] == [USER_URN]


# --------------------------------------------------------------------------------------------------
# Mutability (RFC 7643 §2.2)


def test_okta_group_rename_ignores_the_groups_own_id() -> None:
    result = patch_group(
        group(MEMBER_A), {"op": "replace", "value": {"id": GROUP_ID, "displayName": "Test SCIMv20"}}
    )
    assert result == {**group(MEMBER_A), "displayName": "Test SCIMv20"}


def test_a_different_id_in_a_value_is_a_mutability_error() -> None:
    with pytest.raises(Mutability):
        patch_group(group(), {"op": "replace", "value": {"id": "another-id", "displayName": "x"}})


@pytest.mark.parametrize(
    "operation",
    [
        {"op": "replace", "path": "id", "value": "another-id"},
        {"op": "remove", "path": "id"},
        {"op": "add", "path": "groups", "value": [{"value": "g-1"}]},
        {"op": "add", "path": "meta", "value": {"resourceType": "User"}},
    ],
)
def test_changing_a_read_only_attribute_is_a_mutability_error(operation: dict[str, Any]) -> None:
    with pytest.raises(Mutability):
        patch_user(user(), operation)


def test_changing_an_immutable_sub_attribute_is_a_mutability_error() -> None:
    # RFC 7643 §4.2: "sub-attributes of members are immutable".
    with pytest.raises(Mutability):
        patch_group(
            group(MEMBER_A), {"op": "replace", "path": f'members[value eq "{MEMBER_A}"].value', "value": "x"}
        )


def test_an_immutable_sub_attribute_can_be_set_while_unassigned() -> None:
    before = group()
    before["members"] = [{"value": MEMBER_A}]
    result = patch_group(
        before, {"op": "add", "path": f'members[value eq "{MEMBER_A}"].type', "value": "User"}
    )
    assert result["members"] == [{"value": MEMBER_A, "type": "User"}]


# --------------------------------------------------------------------------------------------------
# Types and paths


@pytest.mark.parametrize(
    ("path", "value"),
    [
        ("active", "yes"),
        ("active", 1),
        ("emails", 5),
        ("emails", ["a@example.com"]),
        ("userName", 5),
        ("name", "Barbara Jensen"),
        ("name.givenName", {"x": 1}),
    ],
)
def test_a_value_of_the_wrong_type_is_invalid_value(path: str, value: Any) -> None:
    with pytest.raises(InvalidValue):
        patch_user(user(), {"op": "replace", "path": path, "value": value})


@pytest.mark.parametrize(
    "path",
    ["noSuchAttribute", "name.noSuchPart", "urn:example:unknown:2.0:User:tag", "displayName[value eq 1]"],
)
def test_an_unknown_or_unusable_path_is_invalid_path(path: str) -> None:
    with pytest.raises(InvalidPath):
        patch_user(user(), {"op": "replace", "path": path, "value": "x"})


def test_a_malformed_path_is_invalid_path() -> None:
    with pytest.raises(InvalidPath):
        patch_user(user(), {"op": "replace", "path": 'emails[type eq "work"', "value": "x"})


def test_an_unknown_key_in_a_path_less_value_is_invalid_path() -> None:
    with pytest.raises(InvalidPath):
        patch_user(user(), {"op": "replace", "value": {"displayName": "x", "favouriteColour": "blue"}})


def test_schemas_in_a_path_less_value_is_ignored() -> None:
    before = user()
    result = patch_user(before, {"op": "replace", "value": {"schemas": ["urn:example"], "title": "Guide"}})
    assert result == {**before, "title": "Guide"}


def test_group_attributes_are_not_user_attributes() -> None:
    with pytest.raises(InvalidPath):
        patch_group(group(), {"op": "replace", "path": "userName", "value": "x"})


def test_password_is_kept_in_the_result() -> None:
    # Okta syncs passwords with PATCH; the caller strips "password" before storing.
    assert (
        patch_user(user(), {"op": "replace", "value": {"password": "t1meMa$heen"}})["password"]
        == "t1meMa$heen"
    )


# --------------------------------------------------------------------------------------------------
# Atomicity and purity


def test_the_input_resource_is_never_mutated() -> None:
    before = user(**{ENTERPRISE: {"department": "Ops"}})
    snapshot = copy.deepcopy(before)
    patch_user(
        before,
        {"op": "add", "path": "emails", "value": [{"value": "x@example.com", "type": "home"}]},
        {"op": "replace", "path": "name.givenName", "value": "B"},
        {"op": "replace", "path": f"{ENTERPRISE}:department", "value": "HR"},
        {"op": "remove", "path": 'emails[type eq "work"].primary'},
    )
    assert before == snapshot


def test_a_failing_later_operation_raises_and_leaves_the_input_unchanged() -> None:
    before = user()
    snapshot = copy.deepcopy(before)
    with pytest.raises(InvalidValue):
        patch_user(
            before,
            {"op": "replace", "path": "displayName", "value": "Babs"},
            {"op": "replace", "path": "active", "value": "yes"},
        )
    assert before == snapshot


def test_operations_apply_in_order() -> None:
    result = patch_user(
        user(),
        {"op": "add", "path": "title", "value": "Guide"},
        {"op": "remove", "path": "title"},
        {"op": "add", "path": "nickName", "value": "B"},
    )
    assert "title" not in result
    assert result["nickName"] == "B"


def test_apply_patch_rejects_operations_that_are_not_a_list() -> None:
    with pytest.raises(InvalidSyntax):
        apply_patch(user(), {"op": "add", "path": "title", "value": "x"}, "User")


# --------------------------------------------------------------------------------------------------
# RFC 7644 §3.5.2 examples


@pytest.mark.parametrize("example", RFC_EXAMPLES, ids=[example["name"] for example in RFC_EXAMPLES])
def test_rfc_7644_patch_examples(example: dict[str, Any]) -> None:
    operations = validate_patch_request(example["request"])
    result = apply_patch(example["resource_before"], operations, example["resource_type"])
    assert result == example["resource_after"]
