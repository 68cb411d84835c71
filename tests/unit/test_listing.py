"""Unit tests for scimledger.scim.listing: query parameters (RFC 7644 §3.4.2, §3.4.3), ListResponse and
RFC 9865 cursors."""

from __future__ import annotations

import base64
import json
import re
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, urlsplit

import pytest

from scimledger.scim import listing
from scimledger.scim.attributes import select_attributes
from scimledger.scim.errors import (
    ExpiredCursor,
    InvalidCount,
    InvalidCursor,
    InvalidSyntax,
    InvalidValue,
)
from scimledger.scim.listing import (
    DEFAULT_COUNT,
    MAX_COUNT,
    MAX_START_INDEX,
    SEARCH_REQUEST_SCHEMA,
    ListQuery,
    decode_cursor,
    encode_cursor,
    list_response,
    query_from_params,
    query_from_search_body,
)

RFC = Path(__file__).parents[1] / "fixtures" / "rfc"
CURSOR_RFC = json.loads((RFC / "cursor_9865.json").read_text())
LISTING_RFC = json.loads((RFC / "listing_7644_3.4.json").read_text())
LIST_RESPONSE = "urn:ietf:params:scim:api:messages:2.0:ListResponse"
SECRET = b"k" * 32
NOW = 1_700_000_000.0


def params_of(request_line: str) -> dict[str, str]:
    """The query parameters of ``GET /path?query`` as Starlette gives them (blank values kept)."""
    return dict(parse_qsl(urlsplit(request_line.split(" ", 1)[1]).query, keep_blank_values=True))


def body(**members: Any) -> dict[str, Any]:
    return {"schemas": [SEARCH_REQUEST_SCHEMA], **members}


# --------------------------------------------------------------------------------------------------
# RFC examples


@pytest.mark.parametrize(
    "exchange", CURSOR_RFC["exchanges"], ids=[e["name"] for e in CURSOR_RFC["exchanges"]]
)
def test_rfc_9865_requests(exchange: dict[str, Any]) -> None:
    if "body" in exchange:
        query = query_from_search_body(exchange["body"])
    else:
        query = query_from_params(params_of(exchange["request"]))

    assert query == ListQuery(**exchange["query"])


@pytest.mark.parametrize(
    "exchange", CURSOR_RFC["exchanges"], ids=[e["name"] for e in CURSOR_RFC["exchanges"]]
)
def test_rfc_9865_responses(exchange: dict[str, Any]) -> None:
    expected = exchange["response"]
    page = [{"id": str(n)} for n in range(expected["itemsPerPage"])]

    out = list_response(
        page,
        expected["totalResults"],
        start_index=None,
        next_cursor=expected.get("nextCursor"),
        previous_cursor=expected.get("previousCursor"),
    )

    assert out.pop("Resources") == page
    assert out == expected


def test_rfc_9865_cursor_examples_are_accepted_as_cursors() -> None:
    for exchange in CURSOR_RFC["exchanges"]:
        for key in ("nextCursor", "previousCursor"):
            if key in exchange["response"]:
                value = exchange["response"][key]
                assert query_from_params({"cursor": value}).cursor == value


@pytest.mark.parametrize(
    "exchange", LISTING_RFC["exchanges"], ids=[e["name"] for e in LISTING_RFC["exchanges"]]
)
def test_rfc_7644_index_pagination(exchange: dict[str, Any]) -> None:
    query = query_from_params(params_of(exchange["request"]))

    assert query == ListQuery(**exchange["query"])
    if "response" in exchange:
        expected = exchange["response"]
        page = [{"id": str(n)} for n in range(query.count)]
        out = list_response(page, expected["totalResults"], start_index=query.start_index)
        out.pop("Resources")
        assert out == expected


def test_rfc_7644_search_request_and_response() -> None:
    search = LISTING_RFC["search"]

    query = query_from_search_body(search["body"])
    resources = [
        select_attributes(
            stored["resource"], stored["resourceType"], attributes=query.attributes, excluded=None
        )
        for stored in search["stored"]
    ]

    assert query == ListQuery(**search["query"])
    assert list_response(resources, 100, start_index=query.start_index) == {
        **search["response"],
        "itemsPerPage": 2,  # the RFC's 10 counts the elided resources too
    }


# --------------------------------------------------------------------------------------------------
# count (RFC 7644 §3.4.2.4)


def test_defaults() -> None:
    assert query_from_params({}) == ListQuery(
        filter=None,
        sort_by=None,
        sort_order="ascending",
        start_index=1,
        count=DEFAULT_COUNT,
        attributes=None,
        excluded_attributes=None,
        cursor=None,
    )
    assert DEFAULT_COUNT == 100
    assert MAX_COUNT == 500


@pytest.mark.parametrize(
    ("text", "count"),
    [
        ("10", 10),
        ("0", 0),
        ("-1", 0),
        ("-500", 0),
        ("500", 500),
        ("501", 500),
        ("100000", 500),
        (" 7 ", 7),
        ("+3", 3),
    ],
)
def test_count_bounds(text: str, count: int) -> None:
    assert query_from_params({"count": text}).count == count


@pytest.mark.parametrize("text", ["ten", "1.5", "1e3", "0x10", "1_000", "--1", "9" * 40])
def test_count_not_an_integer(text: str) -> None:
    with pytest.raises(InvalidCount):
        query_from_params({"count": text})


def test_empty_count_is_the_default() -> None:
    assert query_from_params({"count": ""}).count == DEFAULT_COUNT


# --------------------------------------------------------------------------------------------------
# startIndex (RFC 7644 §3.4.2.4)


@pytest.mark.parametrize(
    ("text", "start"), [("1", 1), ("11", 11), ("0", 1), ("-5", 1), ("99999999999", MAX_START_INDEX)]
)
def test_start_index_bounds(text: str, start: int) -> None:
    assert query_from_params({"startIndex": text}).start_index == start


@pytest.mark.parametrize("text", ["one", "1.0", "x1", "1,5"])
def test_start_index_not_an_integer(text: str) -> None:
    with pytest.raises(InvalidValue):
        query_from_params({"startIndex": text})


def test_empty_start_index_is_the_default() -> None:
    assert query_from_params({"startIndex": ""}).start_index == 1


# --------------------------------------------------------------------------------------------------
# sortBy and sortOrder (RFC 7644 §3.4.2.3)


def test_sort_parameters() -> None:
    query = query_from_params({"sortBy": "name.givenName", "sortOrder": "descending"})

    assert (query.sort_by, query.sort_order) == ("name.givenName", "descending")


def test_sort_order_defaults_to_ascending() -> None:
    assert query_from_params({"sortBy": "userName"}).sort_order == "ascending"


@pytest.mark.parametrize("text", ["Descending", "DESCENDING"])
def test_sort_order_is_case_insensitive(text: str) -> None:
    assert query_from_params({"sortOrder": text}).sort_order == "descending"


@pytest.mark.parametrize("text", ["desc", "asc", "up", "random"])
def test_other_sort_orders_are_refused(text: str) -> None:
    with pytest.raises(InvalidValue):
        query_from_params({"sortOrder": text})


# --------------------------------------------------------------------------------------------------
# Parameter names, attributes, filter


def test_parameter_names_are_case_insensitive() -> None:
    query = query_from_params(
        {
            "FILTER": 'userName eq "x"',
            "sortby": "userName",
            "STARTINDEX": "3",
            "Count": "4",
            "attributes": "id",
        }
    )

    assert query == ListQuery(
        filter='userName eq "x"', sort_by="userName", start_index=3, count=4, attributes=["id"]
    )


def test_exact_spelling_wins_over_other_case() -> None:
    assert query_from_params({"COUNT": "7", "count": "5"}).count == 5


def test_unknown_parameters_are_ignored() -> None:
    assert query_from_params({"foo": "bar", "page": "2"}) == ListQuery()


def test_attribute_parameters_are_split() -> None:
    query = query_from_params({"attributes": "userName, name.givenName"})

    assert query.attributes == ["userName", "name.givenName"]


def test_excluded_attributes_parameter() -> None:
    assert query_from_params({"excludedAttributes": "members"}).excluded_attributes == ["members"]


def test_attributes_and_excluded_attributes_are_exclusive() -> None:
    with pytest.raises(InvalidValue):
        query_from_params({"attributes": "userName", "excludedAttributes": "emails"})


def test_empty_filter_is_absent() -> None:
    assert query_from_params({"filter": ""}).filter is None


def test_filter_is_passed_through_unparsed() -> None:
    assert query_from_params({"filter": "not a filter ("}).filter == "not a filter ("


# --------------------------------------------------------------------------------------------------
# cursor (RFC 9865 §2)


def test_empty_cursor_asks_for_the_first_cursor_page() -> None:
    query = query_from_params({"cursor": ""})

    assert query.cursor == ""
    assert query.start_index == 1


def test_no_cursor_means_index_pagination() -> None:
    assert query_from_params({"count": "5"}).cursor is None


def test_cursor_and_start_index_are_exclusive() -> None:
    with pytest.raises(InvalidValue):
        query_from_params({"cursor": "", "startIndex": "1"})


@pytest.mark.parametrize("cursor", ["a b", "a/b", "a+b", "ä", "a=b", "a%20"])
def test_cursor_outside_the_unreserved_set_is_invalid(cursor: str) -> None:
    with pytest.raises(InvalidCursor):
        query_from_params({"cursor": cursor})


def test_cursor_with_unreserved_characters_is_accepted() -> None:
    assert query_from_params({"cursor": "Az09-._~"}).cursor == "Az09-._~"


# --------------------------------------------------------------------------------------------------
# SearchRequest bodies (RFC 7644 §3.4.3)


def test_search_body_with_every_parameter() -> None:
    query = query_from_search_body(
        body(
            filter='userName sw "j"',
            sortBy="userName",
            sortOrder="descending",
            startIndex=21,
            count=20,
            excludedAttributes=["groups"],
        )
    )

    assert query == ListQuery(
        filter='userName sw "j"',
        sort_by="userName",
        sort_order="descending",
        start_index=21,
        count=20,
        excluded_attributes=["groups"],
    )


def test_search_body_applies_the_same_bounds() -> None:
    query = query_from_search_body(body(startIndex=-3, count=10_000))

    assert (query.start_index, query.count) == (1, MAX_COUNT)


def test_search_body_negative_count_is_zero() -> None:
    assert query_from_search_body(body(count=-1)).count == 0


@pytest.mark.parametrize("value", [None, [], ["urn:ietf:params:scim:schemas:core:2.0:User"], "x", [1]])
def test_search_body_must_name_the_search_request_schema(value: Any) -> None:
    with pytest.raises(InvalidSyntax):
        query_from_search_body({"schemas": value} if value is not None else {})


def test_search_body_schema_uri_is_case_insensitive() -> None:
    assert query_from_search_body({"schemas": [SEARCH_REQUEST_SCHEMA.upper()]}) == ListQuery()


@pytest.mark.parametrize("value", [None, [], "x", 1])
def test_search_body_must_be_an_object(value: Any) -> None:
    with pytest.raises(InvalidSyntax):
        query_from_search_body(value)


@pytest.mark.parametrize(
    "members",
    [
        {"count": "10"},
        {"count": 1.5},
        {"count": True},
        {"startIndex": "1"},
        {"filter": 1},
        {"sortBy": ["userName"]},
        {"sortOrder": 1},
        {"cursor": 5},
        {"attributes": [1]},
        {"attributes": {"a": 1}},
        {"excludedAttributes": 3},
    ],
)
def test_search_body_wrong_types(members: dict[str, Any]) -> None:
    with pytest.raises(InvalidSyntax):
        query_from_search_body(body(**members))


def test_search_body_nulls_are_absent() -> None:
    query = query_from_search_body(
        body(
            filter=None,
            sortBy=None,
            sortOrder=None,
            startIndex=None,
            count=None,
            attributes=None,
            cursor=None,
        )
    )

    assert query == ListQuery()


def test_search_body_unknown_members_are_ignored() -> None:
    assert query_from_search_body(body(foo=1, page={"n": 2})) == ListQuery()


def test_search_body_names_are_case_insensitive() -> None:
    query = query_from_search_body({"SCHEMAS": [SEARCH_REQUEST_SCHEMA], "Count": 3, "sortby": "userName"})

    assert (query.count, query.sort_by) == (3, "userName")


def test_search_body_attributes_may_be_a_string() -> None:
    assert query_from_search_body(body(attributes="userName,emails")).attributes == ["userName", "emails"]


def test_search_body_sort_order_is_checked() -> None:
    with pytest.raises(InvalidValue):
        query_from_search_body(body(sortOrder="down"))


def test_search_body_attributes_and_excluded_are_exclusive() -> None:
    with pytest.raises(InvalidValue):
        query_from_search_body(body(attributes=["userName"], excludedAttributes=["emails"]))


def test_search_body_cursor_and_start_index_are_exclusive() -> None:
    with pytest.raises(InvalidValue):
        query_from_search_body(body(cursor="", startIndex=1))


def test_search_body_invalid_cursor() -> None:
    with pytest.raises(InvalidCursor):
        query_from_search_body(body(cursor="not a cursor"))


# --------------------------------------------------------------------------------------------------
# list_response (RFC 7644 §3.4.2; RFC 9865 §2)


def test_list_response_for_index_pagination() -> None:
    out = list_response([{"id": "a"}, {"id": "b"}], 7, start_index=3)

    assert out == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 7,
        "itemsPerPage": 2,
        "startIndex": 3,
        "Resources": [{"id": "a"}, {"id": "b"}],
    }


def test_list_response_for_cursor_pagination_has_no_start_index() -> None:
    out = list_response([{"id": "a"}], 9, start_index=None, next_cursor="n1", previous_cursor="p1")

    assert out == {
        "schemas": [LIST_RESPONSE],
        "totalResults": 9,
        "itemsPerPage": 1,
        "nextCursor": "n1",
        "previousCursor": "p1",
        "Resources": [{"id": "a"}],
    }


def test_list_response_last_cursor_page_has_no_next_cursor() -> None:
    out = list_response([], 0, start_index=None)

    assert "nextCursor" not in out
    assert "previousCursor" not in out


def test_list_response_empty_page() -> None:
    assert list_response([], 0, start_index=1)["Resources"] == []
    assert list_response([], 0, start_index=1)["itemsPerPage"] == 0


def test_list_response_may_omit_total_results() -> None:
    assert "totalResults" not in list_response([], None, start_index=None, next_cursor="c")


def test_list_response_copies_resources() -> None:
    resource = {"id": "a"}

    list_response([resource], 1, start_index=1)["Resources"][0]["id"] = "b"

    assert resource == {"id": "a"}


# --------------------------------------------------------------------------------------------------
# Cursors (RFC 9865 §2, §5.2)

POSITION = {"k": ["bjensen", "2819c223-7f76-453a-919d-413861904646"], "q": "3f2a"}


def test_cursor_round_trip() -> None:
    cursor = encode_cursor(POSITION, SECRET, now=NOW)

    assert decode_cursor(cursor, SECRET, now=NOW + 1) == POSITION


def test_cursor_round_trips_any_json_object() -> None:
    position = {"k": [None, 1.5, True, "ünïcode"], "nested": {"a": []}}

    assert decode_cursor(encode_cursor(position, SECRET, now=NOW), SECRET, now=NOW) == position


def test_cursor_uses_only_unreserved_characters() -> None:
    cursor = encode_cursor({"k": ["ä/+= ?&", "id"]}, SECRET, now=NOW)

    assert re.fullmatch(r"[A-Za-z0-9._~-]+", cursor)
    assert query_from_params({"cursor": cursor}).cursor == cursor


def test_cursor_expires_after_its_ttl() -> None:
    cursor = encode_cursor(POSITION, SECRET, ttl_seconds=60, now=NOW)

    assert decode_cursor(cursor, SECRET, now=NOW + 59.9) == POSITION
    with pytest.raises(ExpiredCursor):
        decode_cursor(cursor, SECRET, now=NOW + 60)


def test_cursor_is_valid_for_at_least_its_ttl_with_fractional_now() -> None:
    cursor = encode_cursor(POSITION, SECRET, ttl_seconds=10, now=NOW + 0.9)

    assert decode_cursor(cursor, SECRET, now=NOW + 10.8) == POSITION


def test_cursor_default_ttl_is_an_hour() -> None:
    cursor = encode_cursor(POSITION, SECRET, now=NOW)

    assert decode_cursor(cursor, SECRET, now=NOW + 3599) == POSITION
    with pytest.raises(ExpiredCursor):
        decode_cursor(cursor, SECRET, now=NOW + 3600)


def test_cursor_uses_the_clock_by_default() -> None:
    assert decode_cursor(encode_cursor(POSITION, SECRET), SECRET) == POSITION


def test_cursor_with_another_secret_is_invalid() -> None:
    cursor = encode_cursor(POSITION, SECRET, now=NOW)

    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, b"other secret", now=NOW)


def test_tampered_payload_is_invalid() -> None:
    payload, mac = encode_cursor(POSITION, SECRET, now=NOW).split(".")
    forged = encode_cursor({**POSITION, "k": ["zzz", "id"]}, SECRET, now=NOW).split(".")[0]

    with pytest.raises(InvalidCursor):
        decode_cursor(f"{forged}.{mac}", SECRET, now=NOW)
    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload[:-1]}{'A' if payload[-1] != 'A' else 'B'}.{mac}", SECRET, now=NOW)


def test_tampered_mac_is_invalid() -> None:
    payload, mac = encode_cursor(POSITION, SECRET, now=NOW).split(".")

    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload}.{mac[::-1]}", SECRET, now=NOW)


def test_expired_forgery_is_invalid_not_expired() -> None:
    cursor = encode_cursor(POSITION, b"attacker", ttl_seconds=1, now=NOW)

    with pytest.raises(InvalidCursor):
        decode_cursor(cursor, SECRET, now=NOW + 10)


@pytest.mark.parametrize(
    "text",
    ["", "VZUTiyhEQJ94IR", "a.b.c", ".", "a.", ".b", "a b.c", "x" * 5000 + ".y", "eyJ9.AAAA"],
)
def test_malformed_cursors_are_invalid(text: str) -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(text, SECRET, now=NOW)


@pytest.mark.parametrize("document", [[1], {"p": {}}, {"e": "soon", "p": {}}, {"e": 2**40, "p": []}])
def test_signed_but_unexpected_content_is_invalid(document: Any) -> None:
    payload = base64.urlsafe_b64encode(json.dumps(document).encode()).rstrip(b"=").decode()

    with pytest.raises(InvalidCursor):
        decode_cursor(f"{payload}.{listing._mac(payload, SECRET)}", SECRET, now=NOW)


def test_non_string_cursor_is_invalid() -> None:
    with pytest.raises(InvalidCursor):
        decode_cursor(123, SECRET, now=NOW)  # type: ignore[arg-type]


def test_encode_rejects_bad_arguments() -> None:
    with pytest.raises(ValueError):
        encode_cursor(POSITION, b"", now=NOW)
    with pytest.raises(ValueError):
        encode_cursor(POSITION, SECRET, ttl_seconds=0, now=NOW)
    with pytest.raises(TypeError):
        encode_cursor(["not", "a", "dict"], SECRET, now=NOW)  # type: ignore[arg-type]
    with pytest.raises(TypeError):
        encode_cursor({"k": object()}, SECRET, now=NOW)
