"""Unit tests for scimledger.scim.filter_sql: filters and sortBy compiled to parameterised SQL."""

from __future__ import annotations

import json
import uuid
from datetime import UTC, datetime
from pathlib import Path

import pytest

from scimledger.domain.names import user_name_key
from scimledger.scim.errors import InvalidFilter, InvalidValue
from scimledger.scim.filter import parse_filter
from scimledger.scim.filter_sql import ResourceTypeName, compile_filter, compile_sort

ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
MEMBER = "2819c223-7f76-453a-919d-413861904646"
RFC_FILTERS: list[str] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "rfc" / "filters_7644_3.4.2.2.json").read_text()
)["filters"]


def sql(text: str, resource_type: ResourceTypeName = "User") -> tuple[str, list[object]]:
    params: list[object] = []
    return compile_filter(parse_filter(text), resource_type, params, user_name_key), params


def emails_elements(array: str = "u.resource->'emails'") -> str:
    return (
        f"jsonb_array_elements(CASE WHEN jsonb_typeof({array}) = 'array' THEN {array} "
        "ELSE '[]'::jsonb END) AS e(v)"
    )


# --------------------------------------------------------------------------------------------------
# Indexed look-ups


def test_user_name_eq_compares_the_identity_key() -> None:
    assert sql('userName eq " BJensen\u200b"') == ("u.user_name_key = $1", ["bjensen"])


def test_placeholders_continue_after_existing_params() -> None:
    params: list[object] = ["workspace"]
    where = compile_filter(
        parse_filter('userName eq "a" and externalId eq "b"'), "User", params, user_name_key
    )
    assert where == "(u.user_name_key = $2 AND u.external_id = $3)"
    assert params == ["workspace", "a", "b"]


def test_external_id_is_case_exact() -> None:
    assert sql('externalId eq "Ext-1"') == ("u.external_id = $1", ["Ext-1"])


def test_id_eq_valid_uuid_casts_the_parameter() -> None:
    assert sql(f'id eq "{MEMBER.upper()}"') == ("u.id = $1::uuid", [uuid.UUID(MEMBER)])


def test_id_eq_malformed_uuid_is_false_without_parameter() -> None:
    assert sql('id eq "not-a-uuid"') == ("FALSE", [])


def test_group_display_name_eq() -> None:
    assert sql('displayName eq "Admins"', "Group") == ("lower(g.display_name) = lower($1)", ["Admins"])


def test_group_id_uses_the_group_alias() -> None:
    assert sql(f'id eq "{MEMBER}"', "Group") == ("g.id = $1::uuid", [uuid.UUID(MEMBER)])


def test_user_display_name_is_case_insensitive() -> None:
    assert sql('displayName eq "Babs"') == ("lower(u.display_name) = lower($1)", ["Babs"])


def test_active_accepts_boolean_literal() -> None:
    assert sql("active eq false") == ("u.active = $1", [False])


def test_active_accepts_entra_string_boolean() -> None:
    assert sql('active eq "True"') == ("u.active = $1", [True])


def test_meta_last_modified_is_a_timestamptz_parameter() -> None:
    where, params = sql('meta.lastModified gt "2011-05-13T04:42:34Z"')
    assert where == "u.last_modified > $1::timestamptz"
    assert params == [datetime(2011, 5, 13, 4, 42, 34, tzinfo=UTC)]


def test_meta_created_maps_to_created() -> None:
    assert sql('meta.created le "2011-05-13T04:42:34Z"')[0] == "u.created <= $1::timestamptz"


def test_meta_resource_type_is_a_constant() -> None:
    assert sql('meta.resourceType eq "User"') == ("'User'::text = $1", ["User"])


def test_emails_eq_uses_the_email_values_array() -> None:
    assert sql('emails eq "B@Example.com"') == ("u.email_values @> ARRAY[$1]::text[]", ["b@example.com"])


def test_emails_value_eq_uses_the_email_values_array() -> None:
    where, _ = sql('emails.value eq "b@example.com"')
    assert where == "u.email_values @> ARRAY[$1]::text[]"


# --------------------------------------------------------------------------------------------------
# jsonb attributes


def test_core_sub_attribute_reads_the_resource_jsonb() -> None:
    assert sql('name.givenName eq "Barbara"') == (
        "lower((u.resource->'name'->>'givenName')) = lower($1)",
        ["Barbara"],
    )


def test_enterprise_attribute_reads_under_its_uri() -> None:
    where, _ = sql(f'{ENTERPRISE}:department eq "Tour"')
    assert where == f"lower((u.resource->'{ENTERPRISE}'->>'department')) = lower($1)"


def test_enterprise_manager_value() -> None:
    where, _ = sql(f'{ENTERPRISE}:manager.value eq "m1"')
    assert where == f"lower((u.resource->'{ENTERPRISE}'->'manager'->>'value')) = lower($1)"


def test_attribute_names_resolve_case_insensitively_to_canonical_keys() -> None:
    where, _ = sql('NAME.GIVENNAME eq "x"')
    assert "'name'->>'givenName'" in where


def test_multi_valued_sub_attribute_is_exists_over_elements() -> None:
    assert sql('emails.type eq "work"') == (
        f"EXISTS (SELECT 1 FROM {emails_elements()} WHERE lower((e.v->>'type')) = lower($1))",
        ["work"],
    )


def test_value_path_compiles_the_inner_filter_against_one_element() -> None:
    where, params = sql('emails[type eq "work" and value co "@example.com"]')
    assert where == (
        f"EXISTS (SELECT 1 FROM {emails_elements()} WHERE "
        "(lower((e.v->>'type')) = lower($1) AND lower((e.v->>'value')) LIKE lower($2) ESCAPE '\\'))"
    )
    assert params == ["work", "%@example.com%"]


def test_element_boolean_is_read_only_when_it_is_a_json_boolean() -> None:
    where, params = sql('emails[primary eq "True"]')
    assert "CASE WHEN jsonb_typeof(e.v->'primary') = 'boolean' THEN (e.v->>'primary')::boolean END" in where
    assert params == [True]


def test_singular_complex_value_path_qualifies_inner_names() -> None:
    where, _ = sql('name[givenName eq "x"]')
    assert where == "lower((u.resource->'name'->>'givenName')) = lower($1)"


# --------------------------------------------------------------------------------------------------
# Memberships


def test_group_members_value_path_is_exists_over_memberships() -> None:
    assert sql(f'members[value eq "{MEMBER}"]', "Group") == (
        "EXISTS (SELECT 1 FROM scim_group_members gm WHERE gm.workspace_id = g.workspace_id "
        "AND gm.group_id = g.id AND gm.member_id = $1::uuid)",
        [uuid.UUID(MEMBER)],
    )


def test_group_members_eq_uses_the_value_sub_attribute() -> None:
    assert sql(f'members eq "{MEMBER}"', "Group") == sql(f'members.value eq "{MEMBER}"', "Group")


def test_group_members_malformed_id_matches_nothing() -> None:
    where, params = sql('members.value eq "nope"', "Group")
    assert where.endswith("AND FALSE)") and params == []


def test_user_groups_value_is_exists_over_memberships() -> None:
    where, params = sql(f'groups.value eq "{MEMBER}"')
    assert where == (
        "EXISTS (SELECT 1 FROM scim_group_members gm WHERE gm.workspace_id = u.workspace_id "
        "AND gm.member_id = u.id AND gm.group_id = $1::uuid)"
    )
    assert params == [uuid.UUID(MEMBER)]


def test_members_display_compares_the_display_the_idp_set_else_the_users_name() -> None:
    where, _ = sql('members.display co "babs"', "Group")
    assert "lower(coalesce(gm.display, (SELECT coalesce(mu.display_name, mu.user_name)" in where
    assert "LIKE lower($1) ESCAPE '\\'" in where


# --------------------------------------------------------------------------------------------------
# Operators and logic


@pytest.mark.parametrize(
    ("op", "pattern"),
    [("co", "%50\\%\\_a\\\\b%"), ("sw", "50\\%\\_a\\\\b%"), ("ew", "%50\\%\\_a\\\\b")],
)
def test_like_operators_escape_wildcards_and_backslash(op: str, pattern: str) -> None:
    where, params = sql(f'title {op} "50%_a\\\\b"')
    assert where == "lower((u.resource->>'title')) LIKE lower($1) ESCAPE '\\'"
    assert params == [pattern]


def test_case_exact_like_does_not_lower() -> None:
    assert sql('externalId sw "AB"') == ("u.external_id LIKE $1 ESCAPE '\\'", ["AB%"])


@pytest.mark.parametrize(("op", "symbol"), [("gt", ">"), ("ge", ">="), ("lt", "<"), ("le", "<=")])
def test_string_ordering(op: str, symbol: str) -> None:
    assert sql(f'userName {op} "M"') == (f"u.user_name_key {symbol} $1", ["m"])


def test_ne_is_not_eq_and_true_for_absent_attributes() -> None:
    assert sql('userType ne "Employee"')[0] == (
        "NOT COALESCE(lower((u.resource->>'userType')) = lower($1), FALSE)"
    )


def test_not_treats_null_as_false() -> None:
    assert sql("not (title pr)")[0] == (
        "NOT COALESCE(((u.resource->>'title') IS NOT NULL AND (u.resource->>'title') <> ''), FALSE)"
    )


def test_pr_excludes_empty_strings() -> None:
    assert sql("title pr") == ("((u.resource->>'title') IS NOT NULL AND (u.resource->>'title') <> '')", [])


def test_pr_on_multi_valued_is_exists() -> None:
    assert sql("emails pr") == (f"EXISTS (SELECT 1 FROM {emails_elements()})", [])


def test_pr_on_boolean_is_not_null() -> None:
    assert sql("active pr") == ("(u.active IS NOT NULL)", [])


def test_eq_null_is_not_present() -> None:
    assert sql("externalId eq null") == (
        "NOT COALESCE((u.external_id IS NOT NULL AND u.external_id <> ''), FALSE)",
        [],
    )


def test_and_or_precedence_is_kept_with_parentheses() -> None:
    where, _ = sql('userName eq "a" or userName eq "b" and active eq true')
    assert where == "(u.user_name_key = $1 OR (u.user_name_key = $2 AND u.active = $3))"


def test_schemas_eq_extension_checks_the_extension_key() -> None:
    assert sql(f'schemas eq "{ENTERPRISE}"') == (f"(u.resource->'{ENTERPRISE}') IS NOT NULL", [])


def test_schemas_eq_core_is_true() -> None:
    assert sql('schemas eq "urn:ietf:params:scim:schemas:core:2.0:Group"', "Group") == ("TRUE", [])


def test_schemas_eq_unknown_is_false() -> None:
    assert sql(f'schemas eq "{ENTERPRISE}"', "Group") == ("FALSE", [])


@pytest.mark.parametrize("text", RFC_FILTERS)
def test_every_rfc_example_compiles_for_users(text: str) -> None:
    where, _params = sql(text)
    assert where


# --------------------------------------------------------------------------------------------------
# Rejections


@pytest.mark.parametrize(
    ("text", "resource_type"),
    [
        ('nope eq "x"', "User"),
        ('name.nope eq "x"', "User"),
        ('department eq "x"', "User"),
        ('urn:example:unknown:userName eq "x"', "User"),
        ('userName eq "x"', "Group"),
        ('emails[nope eq "x"]', "User"),
        ('emails[value.x eq "x"]', "User"),
        (f'{ENTERPRISE}:department eq "x"', "Group"),
    ],
)
def test_unknown_attribute_raises_invalid_filter(text: str, resource_type: ResourceTypeName) -> None:
    with pytest.raises(InvalidFilter):
        sql(text, resource_type)


@pytest.mark.parametrize(
    "text",
    [
        'active gt "a"',
        'emails.primary le "a"',
        'name gt "a"',
        'x509Certificates.value ge "a"',
        'emails[primary lt "x"]',
    ],
)
def test_ordering_booleans_binaries_and_complex_raises_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidFilter):
        sql(text)


@pytest.mark.parametrize(
    "text",
    [
        'active eq "yes"',
        "active eq 1",
        'active co "t"',
        'meta.created eq "yesterday"',
        'meta.created co "2011"',
        "userName eq 5",
        'name eq "x"',
        'password eq "secret"',
        "password pr",
        'meta.version eq "x"',
        'members.type eq "User"',
        'userName[value eq "x"]',
        'schemas co "urn"',
    ],
)
def test_unsupported_comparisons_raise_invalid_filter(text: str) -> None:
    resource_type: ResourceTypeName = "Group" if text.startswith("members") else "User"
    with pytest.raises(InvalidFilter):
        sql(text, resource_type)


SENTINEL = "Zq'); DROP TABLE scim_users; --"


@pytest.mark.parametrize(
    "template",
    [
        'userName eq "{}"',
        'userName co "{}"',
        'externalId sw "{}"',
        'displayName ew "{}"',
        'emails eq "{}"',
        'emails[type eq "{}"]',
        'name.givenName gt "{}"',
        'members.display eq "{}"',
        'groups.display eq "{}"',
        'id co "{}"',
        'title ne "{}"',
        'not (nickName eq "{}")',
        'urn:ietf:params:scim:schemas:extension:enterprise:2.0:User:manager.value eq "{}"',
    ],
)
def test_values_never_appear_in_the_sql_text(template: str) -> None:
    text = template.format(SENTINEL.replace('"', '\\"'))
    resource_type: ResourceTypeName = "Group" if text.startswith("members") else "User"
    where, params = sql(text, resource_type)
    assert "Zq" not in where and "DROP" not in where
    assert any(isinstance(param, str) and "zq" in param.casefold() for param in params)


# --------------------------------------------------------------------------------------------------
# sortBy


@pytest.mark.parametrize(
    ("sort_by", "resource_type", "expression"),
    [
        ("userName", "User", "lower(u.user_name)"),
        ("USERNAME", "User", "lower(u.user_name)"),
        ("externalId", "User", "u.external_id"),
        ("id", "User", "u.id"),
        ("meta.created", "User", "u.created"),
        ("meta.lastModified", "Group", "g.last_modified"),
        ("displayName", "Group", "lower(g.display_name)"),
        ("active", "User", "u.active"),
        ("name.familyName", "User", "lower((u.resource->'name'->>'familyName'))"),
        (f"{ENTERPRISE}:department", "User", f"lower((u.resource->'{ENTERPRISE}'->>'department'))"),
    ],
)
def test_sort_expressions(sort_by: str, resource_type: ResourceTypeName, expression: str) -> None:
    assert compile_sort(sort_by, resource_type) == expression


def test_sort_by_multi_valued_uses_the_primary_then_first_value() -> None:
    assert compile_sort("emails", "User") == (
        "lower((SELECT (e.v->>'value') FROM jsonb_array_elements(CASE WHEN jsonb_typeof(u.resource->'emails')"
        " = 'array' THEN u.resource->'emails' ELSE '[]'::jsonb END) WITH ORDINALITY AS e(v, n)"
        " ORDER BY COALESCE(e.v->'primary' = 'true'::jsonb, FALSE) DESC, e.n LIMIT 1))"
    )


@pytest.mark.parametrize(
    ("sort_by", "resource_type"),
    [
        ("nope", "User"),
        ("userName", "Group"),
        ("name", "User"),
        ("members", "Group"),
        ("groups", "User"),
        ("password", "User"),
        ("schemas", "User"),
        ("a..b", "User"),
        ('userName eq "x"', "User"),
    ],
)
def test_unsortable_attributes_raise_invalid_value(sort_by: str, resource_type: ResourceTypeName) -> None:
    with pytest.raises(InvalidValue):
        compile_sort(sort_by, resource_type)
