"""Unit tests for scimledger.scim.paths: attrPath (RFC 7644 §3.10) and PATCH paths (§3.5.2)."""

from __future__ import annotations

import pytest

from scimledger.scim.errors import InvalidPath
from scimledger.scim.filter import And, Compare
from scimledger.scim.patch_path import PatchPath, parse_patch_path
from scimledger.scim.paths import AttrPath, parse_attr_path

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
CORE_USER = "urn:ietf:params:scim:schemas:core:2.0:User"


def test_plain_attribute() -> None:
    assert parse_attr_path("userName") == AttrPath(None, "userName")


def test_sub_attribute() -> None:
    assert parse_attr_path("name.givenName") == AttrPath(None, "name", "givenName")


def test_spelling_is_kept() -> None:
    assert parse_attr_path("USERNAME") == AttrPath(None, "USERNAME")


def test_core_uri_with_sub_attribute_splits_at_the_last_colon() -> None:
    assert parse_attr_path(f"{CORE_USER}:name.givenName") == AttrPath(CORE_USER, "name", "givenName")


def test_enterprise_uri_with_sub_attribute() -> None:
    assert parse_attr_path(f"{ENTERPRISE}:manager.value") == AttrPath(ENTERPRISE, "manager", "value")


def test_ref_sub_attribute() -> None:
    assert parse_attr_path("members.$ref") == AttrPath(None, "members", "$ref")


def test_ref_alone_is_a_name_as_inside_a_value_filter() -> None:
    assert parse_attr_path("$ref") == AttrPath(None, "$ref")


def test_name_chars_include_digits_dash_underscore() -> None:
    assert parse_attr_path("x509Certificates.a-b_c") == AttrPath(None, "x509Certificates", "a-b_c")


def test_str_renders_the_path_back() -> None:
    text = f"{ENTERPRISE}:manager.value"
    assert str(parse_attr_path(text)) == text


@pytest.mark.parametrize(
    "text",
    [
        "",
        "1name",
        "name.",
        ".name",
        "a.b.c",
        "user name",
        "name.given-Name!",
        "foo:bar",
        ":userName",
        f"{ENTERPRISE}:",
        'emails[type eq "work"]',
        "name.$value",
    ],
)
def test_malformed_attr_paths_raise_invalid_path(text: str) -> None:
    with pytest.raises(InvalidPath):
        parse_attr_path(text)


def test_patch_plain_path_keeps_sub_attribute_in_attr() -> None:
    assert parse_patch_path("name.givenName") == PatchPath(AttrPath(None, "name", "givenName"), None, None)


def test_patch_extension_path() -> None:
    assert parse_patch_path(f"{ENTERPRISE}:department") == PatchPath(AttrPath(ENTERPRISE, "department"))


def test_patch_value_filter_with_sub_attribute() -> None:
    path = parse_patch_path('emails[type eq "work"].value')
    assert path == PatchPath(AttrPath(None, "emails"), Compare(AttrPath(None, "type"), "eq", "work"), "value")


def test_patch_value_filter_without_sub_attribute() -> None:
    path = parse_patch_path('members[value eq "2819c223"]')
    assert path == PatchPath(AttrPath(None, "members"), Compare(AttrPath(None, "value"), "eq", "2819c223"))


def test_patch_value_filter_keeps_entra_string_boolean() -> None:
    path = parse_patch_path('roles[primary eq "True"].value')
    assert path.value_filter == Compare(AttrPath(None, "primary"), "eq", "True")
    assert path.sub_attr == "value"


def test_patch_value_filter_with_logical_operators() -> None:
    path = parse_patch_path('addresses[type eq "work" and primary eq true].streetAddress')
    assert isinstance(path.value_filter, And)
    assert path.sub_attr == "streetAddress"


def test_patch_value_filter_on_uri_qualified_attribute() -> None:
    path = parse_patch_path(f'{CORE_USER}:emails[type eq "work"].value')
    assert path.attr == AttrPath(CORE_USER, "emails")


def test_patch_closing_bracket_inside_a_string_is_not_the_end() -> None:
    path = parse_patch_path('emails[value eq "a]b.c"].type')
    assert path.value_filter == Compare(AttrPath(None, "value"), "eq", "a]b.c")
    assert path.sub_attr == "type"


@pytest.mark.parametrize(
    "text",
    [
        "",
        'emails[type eq "work"',
        'emails[type eq "work"]value',
        'emails[type eq "work"].',
        'emails[type eq "work"].value.x',
        'emails[type eq "work"][primary eq true]',
        "emails[]",
        "emails[type xx 1]",
        'emails[type eq "work]',
        'name.givenName[value eq "x"]',
        'emails[type[value eq "x"] eq "y"]',
        '[type eq "work"]',
    ],
)
def test_malformed_patch_paths_raise_invalid_path(text: str) -> None:
    with pytest.raises(InvalidPath):
        parse_patch_path(text)
