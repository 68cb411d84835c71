"""Unit tests for scimledger.scim.schemas: attribute definitions, lookup and discovery documents."""

from __future__ import annotations

import dataclasses
import json

import pytest

from scimledger.scim.paths import AttrPath
from scimledger.scim.schemas import (
    ENTERPRISE_USER_SCHEMA,
    ENTERPRISE_USER_URN,
    GROUP_SCHEMA,
    SCHEMAS,
    USER_SCHEMA,
    USER_URN,
    canonical_name,
    canonical_path,
    find_attribute,
    resource_type_documents,
    schema_document,
)


def test_user_name_is_required_server_unique_and_case_insensitive() -> None:
    attr = find_attribute("User", AttrPath(None, "userName"))
    assert attr is not None
    assert (attr.required, attr.uniqueness, attr.case_exact) == (True, "server", False)


def test_id_is_read_only_case_exact_and_always_returned() -> None:
    attr = find_attribute("Group", AttrPath(None, "id"))
    assert attr is not None
    assert (attr.mutability, attr.case_exact, attr.returned) == ("readOnly", True, "always")


def test_external_id_is_case_exact() -> None:
    attr = find_attribute("User", AttrPath(None, "externalId"))
    assert attr is not None and attr.case_exact


def test_meta_sub_attributes_are_read_only() -> None:
    for name in ("resourceType", "created", "lastModified", "location", "version"):
        attr = find_attribute("User", AttrPath(None, "meta", name))
        assert attr is not None and attr.mutability == "readOnly", name
    created = find_attribute("User", AttrPath(None, "meta", "created"))
    assert created is not None and created.type == "dateTime"


def test_lookup_is_case_insensitive() -> None:
    attr = find_attribute("User", AttrPath(None, "NAME", "GIVENNAME"))
    assert attr is not None and attr.name == "givenName"


def test_core_schema_qualified_sub_attribute_resolves() -> None:
    attr = find_attribute("User", AttrPath(USER_URN, "name", "givenName"))
    assert attr is not None and attr.name == "givenName"


def test_schema_uri_matches_case_insensitively() -> None:
    attr = find_attribute("User", AttrPath(ENTERPRISE_USER_URN.upper(), "department"))
    assert attr is not None and attr.name == "department"


def test_enterprise_attribute_needs_its_schema_uri() -> None:
    assert find_attribute("User", AttrPath(ENTERPRISE_USER_URN, "department")) is not None
    assert find_attribute("User", AttrPath(None, "department")) is None


def test_enterprise_manager_display_name_is_read_only() -> None:
    attr = find_attribute("User", AttrPath(ENTERPRISE_USER_URN, "manager", "displayName"))
    assert attr is not None and attr.mutability == "readOnly"


def test_enterprise_manager_value_resolves() -> None:
    attr = find_attribute("User", AttrPath(ENTERPRISE_USER_URN, "manager", "value"))
    assert attr is not None and attr.type == "string"


@pytest.mark.parametrize(
    ("resource_type", "path"),
    [
        ("User", AttrPath(None, "nope")),
        ("User", AttrPath(None, "name", "nope")),
        ("User", AttrPath(None, "userName", "value")),
        ("User", AttrPath("urn:example:unknown", "userName")),
        ("User", AttrPath(ENTERPRISE_USER_URN, "userName")),
        ("Group", AttrPath(None, "userName")),
        ("Group", AttrPath(ENTERPRISE_USER_URN, "department")),
        ("Widget", AttrPath(None, "id")),
    ],
)
def test_unknown_attributes_are_none(resource_type: str, path: AttrPath) -> None:
    assert find_attribute(resource_type, path) is None
    assert canonical_name(resource_type, path) is None


def test_canonical_name_drops_the_core_schema_uri() -> None:
    assert canonical_name("User", AttrPath(USER_URN, "NAME", "givenname")) == "name.givenName"


def test_canonical_name_keeps_the_extension_uri() -> None:
    path = AttrPath(ENTERPRISE_USER_URN.upper(), "Manager", "VALUE")
    assert canonical_name("User", path) == f"{ENTERPRISE_USER_URN}:manager.value"


def test_canonical_path_spells_ref_canonically() -> None:
    assert canonical_path("Group", AttrPath(None, "Members", "$REF")) == AttrPath(None, "members", "$ref")


def test_password_is_write_only_and_never_returned() -> None:
    attr = find_attribute("User", AttrPath(None, "password"))
    assert attr is not None and (attr.mutability, attr.returned) == ("writeOnly", "never")


def test_user_groups_and_their_sub_attributes_are_read_only() -> None:
    groups = find_attribute("User", AttrPath(None, "groups"))
    assert groups is not None and groups.multi_valued and groups.mutability == "readOnly"
    assert [sub.name for sub in groups.sub_attributes] == ["value", "$ref", "display", "type"]
    assert {sub.mutability for sub in groups.sub_attributes} == {"readOnly"}


def test_group_display_name_is_required() -> None:
    attr = find_attribute("Group", AttrPath(None, "displayName"))
    assert attr is not None and attr.required


def test_group_member_sub_attributes_are_immutable() -> None:
    members = find_attribute("Group", AttrPath(None, "members"))
    assert members is not None and members.multi_valued
    assert {sub.name: sub.mutability for sub in members.sub_attributes} == {
        "value": "immutable",
        "$ref": "immutable",
        "display": "immutable",
        "type": "immutable",
    }


def test_addresses_have_the_rfc_sub_attributes() -> None:
    addresses = find_attribute("User", AttrPath(None, "addresses"))
    assert addresses is not None and addresses.multi_valued
    assert [sub.name for sub in addresses.sub_attributes] == [
        "formatted",
        "streetAddress",
        "locality",
        "region",
        "postalCode",
        "country",
        "type",
        "primary",
    ]


@pytest.mark.parametrize("name", ["emails", "phoneNumbers", "ims", "photos", "entitlements", "roles"])
def test_multi_valued_attributes_have_value_display_type_primary(name: str) -> None:
    attr = find_attribute("User", AttrPath(None, name))
    assert attr is not None and attr.multi_valued and attr.type == "complex"
    assert [sub.name for sub in attr.sub_attributes] == ["value", "display", "type", "primary"]


def test_email_type_has_canonical_values() -> None:
    attr = find_attribute("User", AttrPath(None, "emails", "type"))
    assert attr is not None and attr.canonical_values == ("work", "home", "other")


def test_active_is_boolean() -> None:
    attr = find_attribute("User", AttrPath(None, "active"))
    assert attr is not None and attr.type == "boolean"


def test_x509_certificate_value_is_binary() -> None:
    attr = find_attribute("User", AttrPath(None, "x509Certificates", "value"))
    assert attr is not None and attr.type == "binary"


def test_definitions_are_frozen() -> None:
    with pytest.raises(dataclasses.FrozenInstanceError):
        USER_SCHEMA.attributes[0].required = False  # type: ignore[misc]


def test_schemas_lists_user_group_and_enterprise() -> None:
    assert [schema.id for schema in SCHEMAS] == [
        USER_URN,
        "urn:ietf:params:scim:schemas:core:2.0:Group",
        ENTERPRISE_USER_URN,
    ]


def test_schema_document_header() -> None:
    doc = schema_document(GROUP_SCHEMA)
    assert doc["schemas"] == ["urn:ietf:params:scim:schemas:core:2.0:Schema"]
    assert (doc["id"], doc["name"]) == ("urn:ietf:params:scim:schemas:core:2.0:Group", "Group")
    assert doc["meta"] == {"resourceType": "Schema"}


def test_schema_document_location_uses_the_base_url() -> None:
    doc = schema_document(USER_SCHEMA, base_url="https://example.com/scim/v2/")
    assert doc["meta"]["location"] == f"https://example.com/scim/v2/Schemas/{USER_URN}"


def test_schema_document_renders_attribute_characteristics_in_camel_case() -> None:
    user_name = schema_document(USER_SCHEMA)["attributes"][0]
    assert user_name == {
        "name": "userName",
        "type": "string",
        "multiValued": False,
        "description": user_name["description"],
        "required": True,
        "caseExact": False,
        "mutability": "readWrite",
        "returned": "default",
        "uniqueness": "server",
    }
    assert user_name["description"]


def test_schema_document_renders_sub_attributes() -> None:
    name = next(a for a in schema_document(USER_SCHEMA)["attributes"] if a["name"] == "name")
    assert [sub["name"] for sub in name["subAttributes"]] == [
        "formatted",
        "familyName",
        "givenName",
        "middleName",
        "honorificPrefix",
        "honorificSuffix",
    ]


def test_schema_document_renders_reference_types_and_canonical_values() -> None:
    members = next(a for a in schema_document(GROUP_SCHEMA)["attributes"] if a["name"] == "members")
    subs = {sub["name"]: sub for sub in members["subAttributes"]}
    assert subs["$ref"]["referenceTypes"] == ["User", "Group"]
    assert subs["type"]["canonicalValues"] == ["User", "Group"]
    assert "referenceTypes" not in subs["value"]


def test_schema_documents_are_json_serialisable() -> None:
    for schema in (USER_SCHEMA, GROUP_SCHEMA, ENTERPRISE_USER_SCHEMA):
        json.dumps(schema_document(schema, base_url="https://example.com"))


def test_user_resource_type_has_the_optional_enterprise_extension() -> None:
    user = resource_type_documents("https://example.com/v2")[0]
    assert user == {
        "schemas": ["urn:ietf:params:scim:schemas:core:2.0:ResourceType"],
        "id": "User",
        "name": "User",
        "endpoint": "/Users",
        "description": "User Account",
        "schema": USER_URN,
        "schemaExtensions": [{"schema": ENTERPRISE_USER_URN, "required": False}],
        "meta": {"resourceType": "ResourceType", "location": "https://example.com/v2/ResourceTypes/User"},
    }


def test_group_resource_type_has_no_extension() -> None:
    group = resource_type_documents("https://example.com/v2/")[1]
    assert (group["id"], group["endpoint"], group["schema"]) == (
        "Group",
        "/Groups",
        "urn:ietf:params:scim:schemas:core:2.0:Group",
    )
    assert group["schemaExtensions"] == []
    assert group["meta"]["location"] == "https://example.com/v2/ResourceTypes/Group"
