"""Unit tests for scimledger.scim.filter: the RFC 7644 §3.4.2.2 parser and the in-memory matcher."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest

from scimledger.scim.errors import InvalidFilter
from scimledger.scim.filter import (
    And,
    Compare,
    Expr,
    Not,
    Or,
    Present,
    ValuePath,
    matches,
    parse_filter,
)
from scimledger.scim.paths import AttrPath

RFC_FILTERS: list[str] = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "rfc" / "filters_7644_3.4.2.2.json").read_text()
)["filters"]
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"


def p(attr: str, sub: str | None = None, schema: str | None = None) -> AttrPath:
    return AttrPath(schema, attr, sub)


def pr(attr: str) -> Present:
    return Present(p(attr))


# --------------------------------------------------------------------------------------------------
# Parser


@pytest.mark.parametrize("text", RFC_FILTERS)
def test_parses_every_rfc_example(text: str) -> None:
    parse_filter(text)


def test_rfc_fixture_has_the_whole_table() -> None:
    assert len(RFC_FILTERS) == 17


@pytest.mark.parametrize("op", ["eq", "ne", "co", "sw", "ew", "gt", "ge", "lt", "le"])
def test_every_comparison_operator(op: str) -> None:
    assert parse_filter(f'title {op} "x"') == Compare(p("title"), op, "x")


def test_present_operator() -> None:
    assert parse_filter("title pr") == pr("title")


def test_operators_are_case_insensitive_and_normalised() -> None:
    assert parse_filter('userName Eq "john"') == Compare(p("userName"), "eq", "john")


def test_attribute_spelling_is_kept() -> None:
    assert parse_filter('Username eq "john"') == Compare(p("Username"), "eq", "john")


def test_logical_keywords_are_case_insensitive() -> None:
    assert parse_filter("a pr AND NOT (b pr) Or c pr") == Or(And(pr("a"), Not(pr("b"))), pr("c"))


def test_and_binds_tighter_than_or() -> None:
    assert parse_filter("a pr or b pr and c pr") == Or(pr("a"), And(pr("b"), pr("c")))


def test_not_binds_tighter_than_and() -> None:
    assert parse_filter("not (a pr) and b pr") == And(Not(pr("a")), pr("b"))


def test_parentheses_override_precedence() -> None:
    assert parse_filter("(a pr or b pr) and c pr") == And(Or(pr("a"), pr("b")), pr("c"))


def test_chains_keep_operand_order() -> None:
    assert parse_filter("a pr and b pr and c pr") == And(And(pr("a"), pr("b")), pr("c"))


def test_not_without_space_before_parenthesis() -> None:
    assert parse_filter("not(a pr)") == Not(pr("a"))


def test_sub_attribute() -> None:
    assert parse_filter('name.familyName co "O\'Malley"') == Compare(
        p("name", "familyName"), "co", "O'Malley"
    )


def test_uri_qualified_attribute() -> None:
    parsed = parse_filter(f'{ENTERPRISE}:manager.value eq "x"')
    assert parsed == Compare(p("manager", "value", ENTERPRISE), "eq", "x")


def test_value_path() -> None:
    parsed = parse_filter('emails[type eq "work" and value co "@example.com"]')
    assert parsed == ValuePath(
        p("emails"), And(Compare(p("type"), "eq", "work"), Compare(p("value"), "co", "@example.com"))
    )


def test_value_paths_combine_with_logical_operators() -> None:
    parsed = parse_filter('emails[type eq "work"] or ims[type eq "xmpp"]')
    assert parsed == Or(
        ValuePath(p("emails"), Compare(p("type"), "eq", "work")),
        ValuePath(p("ims"), Compare(p("type"), "eq", "xmpp")),
    )


def test_string_json_escapes_are_decoded() -> None:
    parsed = parse_filter(r'title eq "a\"b\\c\/d\u00e9\n"')
    assert parsed == Compare(p("title"), "eq", 'a"b\\c/d\u00e9\n')


def test_string_may_contain_operators_and_brackets() -> None:
    parsed = parse_filter('title eq "x and (y) or [z] pr"')
    assert parsed == Compare(p("title"), "eq", "x and (y) or [z] pr")


@pytest.mark.parametrize(
    ("literal", "value"),
    [
        ("42", 42),
        ("-7", -7),
        ("0", 0),
        ("1.5", 1.5),
        ("2e3", 2000.0),
        ("true", True),
        ("false", False),
        ("null", None),
        ("True", True),
    ],
)
def test_json_literals(literal: str, value: object) -> None:
    parsed = parse_filter(f"x eq {literal}")
    assert isinstance(parsed, Compare)
    assert parsed.value == value and type(parsed.value) is type(value)


def test_extra_whitespace_is_allowed() -> None:
    assert parse_filter('  userName   eq   "x"  ') == Compare(p("userName"), "eq", "x")


@pytest.mark.parametrize(
    "text",
    [
        "",
        "   ",
        "userName",
        'userName xx "a"',
        "userName eq",
        "userName eq bjensen",
        'userName eq "unterminated',
        r'userName eq "bad \x escape"',
        "userName eq 01",
        "userName eq 1.",
        "(a pr",
        "a pr)",
        "a pr b pr",
        "a pr and",
        "and a pr",
        "not a pr",
        "not",
        "()",
        "1abc pr",
        "a.b.c pr",
        'userName pr "x"',
        'emails[type eq "work"',
        "emails[]",
        'emails[type[value eq "x"] eq "y"]',
        "active gt true",
        "title co null",
        "title eq [1]",
        '"x" eq title',
    ],
)
def test_bad_syntax_raises_invalid_filter(text: str) -> None:
    with pytest.raises(InvalidFilter):
        parse_filter(text)


def test_too_long_raises_invalid_filter() -> None:
    text = 'title eq "' + "x" * 2040 + '"'
    assert len(text) > 2048
    with pytest.raises(InvalidFilter):
        parse_filter(text)


def test_max_length_is_configurable() -> None:
    with pytest.raises(InvalidFilter):
        parse_filter('title eq "abc"', max_length=10)


def test_nesting_up_to_max_depth_is_accepted() -> None:
    assert parse_filter("(" * 16 + "a pr" + ")" * 16) == pr("a")


def test_nesting_beyond_max_depth_raises_invalid_filter() -> None:
    with pytest.raises(InvalidFilter):
        parse_filter("(" * 17 + "a pr" + ")" * 17)


def test_value_path_counts_towards_depth() -> None:
    with pytest.raises(InvalidFilter):
        parse_filter("(" * 3 + 'emails[type eq "w"]' + ")" * 3, max_depth=3)


def test_long_chains_do_not_exhaust_the_stack() -> None:
    text = " or ".join(f'a{i} eq "x"' for i in range(5000))
    expr = parse_filter(text, max_length=len(text))
    assert matches(expr, {"a4999": "x"})
    assert not matches(expr, {"b": "x"})


# --------------------------------------------------------------------------------------------------
# matches()


def check(text: str, obj: dict[str, Any], **kwargs: Any) -> bool:
    return matches(parse_filter(text), obj, **kwargs)


def test_eq_on_strings_is_case_insensitive_by_default() -> None:
    assert check('type eq "WORK"', {"type": "work"})


def test_case_exact_attribute_compares_exactly() -> None:
    def exact(path: AttrPath) -> bool:
        return path.attr == "externalId"

    assert not check('externalId eq "ABC"', {"externalId": "abc"}, case_exact=exact)
    assert check('externalId eq "abc"', {"externalId": "abc"}, case_exact=exact)


def test_attribute_names_are_looked_up_case_insensitively() -> None:
    assert check('TYPE eq "work"', {"type": "work"})


def test_entra_string_true_matches_boolean_true() -> None:
    assert check('primary eq "True"', {"primary": True})


def test_entra_string_true_does_not_match_boolean_false() -> None:
    assert not check('primary eq "True"', {"primary": False})


def test_entra_string_false_matches_boolean_false() -> None:
    assert check('primary eq "False"', {"primary": False})


def test_boolean_literal_matches_boolean() -> None:
    assert check("primary eq true", {"primary": True})
    assert not check("primary eq true", {"primary": False})


def test_boolean_ne() -> None:
    assert check("primary ne true", {"primary": False})


def test_ordering_a_boolean_raises_invalid_filter() -> None:
    with pytest.raises(InvalidFilter):
        check('primary gt "a"', {"primary": True})


def test_dates_compare_chronologically_across_offsets() -> None:
    assert check('created eq "2011-05-13T06:42:34+02:00"', {"created": "2011-05-13T04:42:34Z"})


def test_dates_order_chronologically() -> None:
    obj = {"created": "2011-05-13T04:42:34Z"}
    assert check('created gt "2011-05-13T05:00:00+02:00"', obj)
    assert not check('created lt "2011-05-13T05:00:00+02:00"', obj)


def test_numbers_compare_numerically() -> None:
    assert check("n gt 9", {"n": 10})
    assert check("n eq 10.0", {"n": 10})
    assert not check('n eq "10"', {"n": 10})


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ('value co "EXAMPLE"', True),
        ('value sw "BJ"', True),
        ('value ew ".COM"', True),
        ('value co "nope"', False),
        ('value sw "example"', False),
        ('value ew "bjensen"', False),
        ('value gt "a"', True),
        ('value ge "bjensen@example.com"', True),
        ('value lt "a"', False),
        ('value le "BJENSEN@EXAMPLE.COM"', True),
    ],
)
def test_string_operators(text: str, expected: bool) -> None:
    assert check(text, {"value": "bjensen@example.com"}) is expected


@pytest.mark.parametrize("value", [None, "", [], {}])
def test_pr_is_false_for_empty_values(value: object) -> None:
    assert not check("title pr", {"title": value})


def test_pr_is_false_for_a_missing_attribute() -> None:
    assert not check("title pr", {})


def test_pr_is_true_for_a_value() -> None:
    assert check("title pr", {"title": "x"})


def test_missing_attribute_is_not_eq() -> None:
    assert not check('title eq "x"', {})


def test_missing_attribute_is_ne() -> None:
    assert check('title ne "x"', {})


def test_eq_null_means_absent() -> None:
    assert check("title eq null", {"title": None})
    assert not check("title eq null", {"title": "x"})


def test_multi_valued_matches_if_any_value_does() -> None:
    user = {"emails": [{"value": "a@x.com", "type": "home"}, {"value": "b@y.com", "type": "work"}]}
    assert check('emails.type eq "work"', user)


def test_multi_valued_without_sub_attribute_uses_value() -> None:
    assert check('emails co "y.com"', {"emails": [{"value": "a@x.com"}, {"value": "b@y.com"}]})


def test_multi_valued_ne_is_not_any_eq() -> None:
    user = {"emails": [{"value": "a@x.com"}, {"value": "b@y.com"}]}
    assert not check('emails ne "a@x.com"', user)


def test_value_path_requires_one_element_to_match_everything() -> None:
    user = {"emails": [{"value": "a@example.com", "type": "home"}, {"value": "b@y.com", "type": "work"}]}
    assert not check('emails[type eq "work" and value co "@example.com"]', user)
    assert check('emails[type eq "home" and value co "@example.com"]', user)


def test_value_filter_on_group_member_element() -> None:
    assert check('value eq "2819c223"', {"value": "2819c223", "display": "Babs"})


def test_members_value_path_on_a_group() -> None:
    group = {"members": [{"value": "1"}, {"value": "2819c223"}]}
    assert check('members[value eq "2819c223"]', group)
    assert not check('members[value eq "3"]', group)


def test_value_path_case_exact_sees_the_qualified_path() -> None:
    seen: list[AttrPath] = []

    def exact(path: AttrPath) -> bool:
        seen.append(path)
        return True

    assert not check('emails[value eq "A@X.COM"]', {"emails": [{"value": "a@x.com"}]}, case_exact=exact)
    assert seen == [AttrPath(None, "emails", "value")]


def test_schema_qualified_path_reads_the_extension_object() -> None:
    user = {ENTERPRISE: {"manager": {"value": "m1"}}}
    assert check(f'{ENTERPRISE}:manager.value eq "M1"', user)


def test_core_qualified_path_reads_the_object_itself() -> None:
    user = {"userName": "bjensen"}
    assert check('urn:ietf:params:scim:schemas:core:2.0:User:userName eq "bjensen"', user)


def test_not_and_or() -> None:
    obj = {"a": "1", "b": "2"}
    assert check('a eq "1" and not (b eq "3")', obj)
    assert not check('a eq "2" or b eq "3"', obj)


@pytest.mark.parametrize(
    ("expr", "expected"),
    [
        (Compare(p("userName"), "sw", "J"), False),
        (Compare(p("userName"), "sw", "b"), True),
        (Present(p("title")), True),
        (Compare(p("meta", "lastModified"), "gt", "2011-05-13T04:42:34Z"), False),
        (Compare(p("meta", "lastModified"), "ge", "2011-05-13T04:42:34Z"), True),
    ],
)
def test_rfc_user_example(expr: Expr, expected: bool) -> None:
    user = {
        "userName": "bjensen",
        "title": "Tour Guide",
        "meta": {"lastModified": "2011-05-13T04:42:34Z"},
    }
    assert matches(expr, user) is expected


def test_entra_value_path_with_sub_attribute_comparison() -> None:
    """Microsoft Entra: ``emails[type eq "work"].value eq "x"`` means both conditions on one email."""
    from scimledger.scim.filter import And, Compare, ValuePath, matches, parse_filter
    from scimledger.scim.paths import AttrPath

    expr = parse_filter('emails[type eq "work"].value eq "a@x.com"')
    assert expr == ValuePath(
        AttrPath(None, "emails"),
        And(Compare(AttrPath(None, "type"), "eq", "work"), Compare(AttrPath(None, "value"), "eq", "a@x.com")),
    )
    assert matches(expr, {"emails": [{"type": "work", "value": "a@x.com"}]})
    assert not matches(expr, {"emails": [{"type": "home", "value": "a@x.com"}]})
