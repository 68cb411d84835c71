"""Tests for scimledger.scim.bulk: RFC 7644 §3.7 bulk requests, run against in-memory fake dispatchers.

The RFC's own examples are in ``tests/fixtures/rfc/bulk_7644_3.7.json``: each gives the request, the calls
the dispatcher must receive (with ``bulkId`` references resolved) and what it answers, and the expected
BulkResponse. The other tests use :class:`FakeServer`, a dict of resources behind the dispatcher
interface. Each test is named for one behaviour and fails if that behaviour breaks.
"""

from __future__ import annotations

import copy
import json
from pathlib import Path
from typing import Any, Literal

import pytest

from scimledger.scim import errors
from scimledger.scim.bulk import (
    BULK_REQUEST_SCHEMA,
    BULK_RESPONSE_SCHEMA,
    BulkRequest,
    DispatchResult,
    execute_bulk,
    validate_bulk_request,
)
from scimledger.scim.errors import Conflict, InvalidSyntax, NotFound, PayloadTooLarge, ScimError, Uniqueness
from scimledger.scim.patch import PATCH_OP_SCHEMA, apply_patch, validate_patch_request

USER_URN = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP_URN = "urn:ietf:params:scim:schemas:core:2.0:Group"
ENTERPRISE = "urn:ietf:params:scim:schemas:extension:enterprise:2.0:User"
BASE = "https://example.com/v2"
FIXTURES = json.loads(
    (Path(__file__).parents[1] / "fixtures" / "rfc" / "bulk_7644_3.7.json").read_text(encoding="utf-8")
)
LIMITS: dict[str, int] = {"max_operations": 1000, "max_payload_size": 1048576, "payload_size": 100}


# --- helpers -------------------------------------------------------------------------------------------


def bulk(*operations: Any, **attrs: Any) -> dict[str, Any]:
    return {"schemas": [BULK_REQUEST_SCHEMA], "Operations": list(operations), **attrs}


def post_user(bulk_id: str, user_name: str, **attrs: Any) -> dict[str, Any]:
    data = {"schemas": [USER_URN], "userName": user_name, **attrs}
    return {"method": "POST", "path": "/Users", "bulkId": bulk_id, "data": data}


def post_group(bulk_id: str, name: str, *member_values: str) -> dict[str, Any]:
    data: dict[str, Any] = {"schemas": [GROUP_URN], "displayName": name}
    if member_values:
        data["members"] = [{"value": value} for value in member_values]
    return {"method": "POST", "path": "/Groups", "bulkId": bulk_id, "data": data}


def patch_op(path: str, *operations: dict[str, Any]) -> dict[str, Any]:
    return {
        "method": "PATCH",
        "path": path,
        "data": {"schemas": [PATCH_OP_SCHEMA], "Operations": list(operations)},
    }


def check(body: dict[str, Any], **limits: int) -> BulkRequest:
    return validate_bulk_request(body, **{**LIMITS, **limits})


def syntax_error(body: Any) -> InvalidSyntax:
    with pytest.raises(InvalidSyntax) as caught:
        check(body)
    assert caught.value.status == 400 and caught.value.scim_type == "invalidSyntax"
    return caught.value


class FakeServer:
    """A dispatcher over an in-memory store: POST creates ``<type>-<n>``, PUT/PATCH/DELETE need the resource.

    ``fail`` maps a label to the error to raise: a POST's ``userName``/``displayName``, else
    ``"<METHOD> <path>"``. Every call is recorded, with a copy of its data.
    """

    def __init__(self, fail: dict[str, ScimError] | None = None) -> None:
        self.resources: dict[str, dict[str, Any]] = {}
        self.calls: list[tuple[str, str, Any, str | None]] = []
        self.fail = fail or {}
        self.count = 0

    async def __call__(self, method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        self.calls.append((method, path, copy.deepcopy(data), version))
        label = (data.get("userName") or data.get("displayName")) if method == "POST" else f"{method} {path}"
        if label in self.fail:
            raise self.fail[label]
        self.count += 1
        new_version = f'W/"{self.count}"'
        if method == "POST":
            resource_id = f"{path[1:-1].lower()}-{self.count}"
            self.resources[f"{path}/{resource_id}"] = {**data, "id": resource_id}
            return 201, self.resources[f"{path}/{resource_id}"], f"{BASE}{path}/{resource_id}", new_version
        if path not in self.resources:
            raise NotFound(f"Resource {path} not found")
        if method == "DELETE":
            del self.resources[path]
            return 204, None, None, None
        if method == "PUT":
            self.resources[path] = {**data, "id": self.resources[path]["id"]}
        else:
            kind: Literal["User", "Group"] = "User" if path.startswith("/Users/") else "Group"
            self.resources[path] = apply_patch(self.resources[path], validate_patch_request(data), kind)
        return 200, self.resources[path], f"{BASE}{path}", new_version


async def run(body: dict[str, Any], server: FakeServer) -> dict[str, Any]:
    return await execute_bulk(check(body), server, base_url=BASE)


def results(response: dict[str, Any]) -> list[dict[str, Any]]:
    assert response["schemas"] == [BULK_RESPONSE_SCHEMA]
    operations: list[dict[str, Any]] = response["Operations"]
    return operations


# --- the RFC 7644 §3.7 examples ------------------------------------------------------------------------


class ScriptedDispatch:
    """A dispatcher that expects the fixture's calls, in order, and answers as the fixture says."""

    def __init__(self, calls: list[dict[str, Any]]) -> None:
        self.expected = list(calls)
        self.received = 0

    async def __call__(self, method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        assert self.received < len(self.expected), f"unexpected call {method} {path}"
        call = self.expected[self.received]
        self.received += 1
        assert (method, path, data, version) == (call["method"], call["path"], call["data"], call["version"])
        if "raises" in call:
            raise getattr(errors, call["raises"]["error"])(call["raises"]["detail"])
        returns = call["returns"]
        return returns["status"], returns["body"], returns["location"], returns["version"]


@pytest.mark.parametrize("example", FIXTURES["execute"], ids=[e["name"] for e in FIXTURES["execute"]])
async def test_rfc_example_makes_the_expected_calls_and_response(example: dict[str, Any]) -> None:
    dispatch = ScriptedDispatch(example["calls"])
    request = check(copy.deepcopy(example["request"]))
    response = await execute_bulk(request, dispatch, base_url=example["base_url"])
    assert dispatch.received == len(example["calls"])
    assert response == example["response"]


@pytest.mark.parametrize("example", FIXTURES["reject"], ids=[e["name"] for e in FIXTURES["reject"]])
def test_rfc_example_is_rejected_with_the_expected_error(example: dict[str, Any]) -> None:
    with pytest.raises(ScimError) as caught:
        validate_bulk_request(
            example["request"],
            max_operations=example["max_operations"],
            max_payload_size=example["max_payload_size"],
            payload_size=example["payload_size"],
        )
    assert caught.value.body() == example["error"]


# --- validation: limits (RFC 7644 §3.7.4) --------------------------------------------------------------


def test_payload_over_max_payload_size_is_413_naming_the_limit() -> None:
    with pytest.raises(PayloadTooLarge) as caught:
        check(bulk(post_user("a", "alice")), max_payload_size=1000, payload_size=1001)
    assert caught.value.status == 413
    assert caught.value.detail == "The size of the bulk operation exceeds the maxPayloadSize (1000)."


def test_payload_of_exactly_max_payload_size_is_accepted() -> None:
    assert len(check(bulk(post_user("a", "alice")), max_payload_size=1000, payload_size=1000).operations) == 1


def test_more_operations_than_max_operations_is_413_naming_the_limit() -> None:
    body = bulk(*(post_user(f"u{i}", f"user{i}") for i in range(3)))
    with pytest.raises(PayloadTooLarge) as caught:
        check(body, max_operations=2)
    assert caught.value.status == 413
    assert "maxOperations (2)" in caught.value.detail and "(3)" in caught.value.detail


def test_exactly_max_operations_is_accepted() -> None:
    body = bulk(*(post_user(f"u{i}", f"user{i}") for i in range(2)))
    assert len(check(body, max_operations=2).operations) == 2


# --- validation: the bulk envelope (RFC 7644 §3.7) ------------------------------------------------------


def test_body_that_is_not_an_object_is_invalid_syntax() -> None:
    syntax_error([post_user("a", "alice")])


def test_schemas_without_the_bulk_request_urn_is_invalid_syntax() -> None:
    body = bulk(post_user("a", "alice"))
    body["schemas"] = ["urn:ietf:params:scim:api:messages:2.0:PatchOp"]
    assert BULK_REQUEST_SCHEMA in syntax_error(body).detail


def test_missing_operations_is_invalid_syntax() -> None:
    syntax_error({"schemas": [BULK_REQUEST_SCHEMA]})


def test_operations_that_is_not_a_list_is_invalid_syntax() -> None:
    syntax_error({"schemas": [BULK_REQUEST_SCHEMA], "Operations": post_user("a", "alice")})


def test_empty_operations_is_invalid_syntax() -> None:
    syntax_error(bulk())


def test_attribute_names_are_case_insensitive() -> None:
    request = check(
        {"SCHEMAS": [BULK_REQUEST_SCHEMA], "operations": [{"METHOD": "delete", "Path": "/Users/1"}]}
    )
    assert (request.operations[0].method, request.operations[0].path) == ("DELETE", "/Users/1")


def test_method_is_normalised_to_upper_case() -> None:
    request = check(bulk({"method": "pAtCh", "path": "/Users/1", "data": {"schemas": [PATCH_OP_SCHEMA]}}))
    assert request.operations[0].method == "PATCH"


def test_operation_that_is_not_an_object_is_invalid_syntax() -> None:
    assert "Operations[1]" in syntax_error(bulk(post_user("a", "alice"), "DELETE /Users/1")).detail


@pytest.mark.parametrize("method", [None, "GET", "MERGE", 1])
def test_method_other_than_post_put_patch_delete_is_invalid_syntax(method: Any) -> None:
    syntax_error(bulk({"method": method, "path": "/Users/1"}))


def test_missing_path_is_invalid_syntax() -> None:
    syntax_error(bulk({"method": "DELETE"}))


def test_post_without_bulk_id_is_invalid_syntax() -> None:
    operation = post_user("a", "alice")
    del operation["bulkId"]
    assert "bulkId" in syntax_error(bulk(operation)).detail


@pytest.mark.parametrize("bulk_id", ["", 7, None])
def test_bulk_id_that_is_not_a_non_empty_string_is_invalid_syntax(bulk_id: Any) -> None:
    syntax_error(bulk({**post_user("a", "alice"), "bulkId": bulk_id}))


def test_duplicate_bulk_id_is_invalid_syntax() -> None:
    assert '"a"' in syntax_error(bulk(post_user("a", "alice"), post_user("a", "bob"))).detail


@pytest.mark.parametrize("method", ["POST", "PUT", "PATCH"])
def test_missing_data_is_invalid_syntax_for_methods_that_need_it(method: str) -> None:
    syntax_error(
        bulk({"method": method, "path": "/Users" if method == "POST" else "/Users/1", "bulkId": "a"})
    )


def test_data_that_is_not_an_object_is_invalid_syntax() -> None:
    syntax_error(bulk({"method": "PUT", "path": "/Users/1", "data": [{"userName": "x"}]}))


def test_delete_needs_no_data_and_ignores_any() -> None:
    request = check(bulk({"method": "DELETE", "path": "/Users/1", "data": {"userName": "x"}}))
    assert request.operations[0].data is None


def test_version_that_is_not_a_string_is_invalid_syntax() -> None:
    syntax_error(bulk({"method": "DELETE", "path": "/Users/1", "version": 3}))


@pytest.mark.parametrize("value", [0, -1, "1", 1.5, True])
def test_fail_on_errors_that_is_not_a_positive_integer_is_invalid_syntax(value: Any) -> None:
    assert "failOnErrors" in syntax_error(bulk(post_user("a", "alice"), failOnErrors=value)).detail


def test_fail_on_errors_is_kept() -> None:
    assert check(bulk(post_user("a", "alice"), failOnErrors=2)).fail_on_errors == 2


# --- execution: bulkId resolution (RFC 7644 §3.7.2) -----------------------------------------------------


async def test_bulk_id_in_the_path_is_replaced_by_the_created_id() -> None:
    server = FakeServer()
    body = bulk(
        post_group("g", "Admins"),
        patch_op("/Groups/bulkId:g", {"op": "replace", "path": "displayName", "value": "Operators"}),
    )
    response = await run(body, server)
    assert server.calls[1][1] == "/Groups/group-1"
    assert results(response)[1] == {
        "method": "PATCH",
        "location": f"{BASE}/Groups/group-1",
        "version": 'W/"2"',
        "status": "200",
    }
    assert server.resources["/Groups/group-1"]["displayName"] == "Operators"


async def test_bulk_id_in_patch_data_is_replaced_by_the_created_id() -> None:
    server = FakeServer()
    await run(
        bulk(
            post_user("u", "alice"),
            post_group("g", "Admins"),
            patch_op("/Groups/bulkId:g", {"op": "add", "path": "members", "value": [{"value": "bulkId:u"}]}),
        ),
        server,
    )
    assert server.resources["/Groups/group-2"]["members"] == [{"value": "user-1"}]


async def test_a_string_that_only_contains_a_reference_is_left_alone() -> None:
    server = FakeServer()
    await run(bulk(post_user("u", "alice"), post_user("v", "bob", nickName="see bulkId:u")), server)
    assert server.calls[1][2]["nickName"] == "see bulkId:u"


async def test_request_data_is_not_modified() -> None:
    body = bulk(post_user("u", "alice"), post_group("g", "Admins", "bulkId:u"))
    request = check(body)
    before = copy.deepcopy(request.operations[1].data)
    await execute_bulk(request, FakeServer(), base_url=BASE)
    assert request.operations[1].data == before


# --- execution: ordering (RFC 7644 §3.7) ----------------------------------------------------------------


async def test_operation_waits_for_the_post_it_references() -> None:
    server = FakeServer()
    response = await run(bulk(post_group("g", "Admins", "bulkId:u"), post_user("u", "alice")), server)
    assert [call[0:2] for call in server.calls] == [("POST", "/Users"), ("POST", "/Groups")]
    assert server.calls[1][2]["members"] == [{"value": "user-1"}]
    assert [entry["bulkId"] for entry in results(response)] == ["g", "u"]


async def test_operations_without_references_run_in_request_order() -> None:
    server = FakeServer()
    await run(bulk(post_user("b", "bob"), post_user("a", "alice"), post_user("c", "carol")), server)
    assert [call[2]["userName"] for call in server.calls] == ["bob", "alice", "carol"]


async def test_waiting_operation_runs_right_after_its_post_and_before_later_ones() -> None:
    server = FakeServer()
    await run(
        bulk(
            post_group("g", "Admins", "bulkId:u"),
            post_user("x", "xavier"),
            post_user("u", "alice"),
            post_user("z", "zoe"),
        ),
        server,
    )
    names = [call[2].get("userName") or call[2].get("displayName") for call in server.calls]
    assert names == ["xavier", "alice", "Admins", "zoe"]


# --- execution: references that cannot be resolved ------------------------------------------------------


async def test_reference_to_an_undefined_bulk_id_fails_with_400_invalid_value() -> None:
    server = FakeServer()
    response = await run(bulk(post_group("g", "Admins", "bulkId:nobody"), post_user("u", "alice")), server)
    first = results(response)[0]
    assert (first["status"], first["response"]["scimType"]) == ("400", "invalidValue")
    assert "location" not in first
    assert [call[2].get("userName") for call in server.calls] == ["alice"]


async def test_reference_to_a_failed_post_fails_with_409_without_dispatching() -> None:
    server = FakeServer(fail={"alice": Uniqueness("userName alice is taken")})
    response = await run(bulk(post_user("u", "alice"), post_group("g", "Admins", "bulkId:u")), server)
    first, second = results(response)
    assert (first["status"], first["response"]["scimType"]) == ("409", "uniqueness")
    assert second["status"] == "409" and "scimType" not in second["response"]
    assert "bulkId:u" in second["response"]["detail"]
    assert len(server.calls) == 1


async def test_failed_reference_cascades_to_operations_that_reference_the_failed_one() -> None:
    server = FakeServer(fail={"alice": Uniqueness("userName alice is taken")})
    response = await run(
        bulk(
            post_user("u", "alice"),
            post_group("g", "Admins", "bulkId:u"),
            post_group("h", "Root", "bulkId:g"),
        ),
        server,
    )
    assert [entry["status"] for entry in results(response)] == ["409", "409", "409"]
    assert "bulkId:g" in results(response)[2]["response"]["detail"]


async def test_path_reference_that_cannot_be_resolved_gives_no_location() -> None:
    server = FakeServer(fail={"Admins": Uniqueness("displayName Admins is taken")})
    response = await run(
        bulk(post_group("g", "Admins"), {"method": "DELETE", "path": "/Groups/bulkId:g"}), server
    )
    assert results(response)[1] == {
        "method": "DELETE",
        "status": "409",
        "response": Conflict(
            '"bulkId:g" cannot be resolved: its POST operation failed with status 409'
        ).body(),
    }


# --- execution: circular references (RFC 7644 §3.7.1) ---------------------------------------------------


async def test_self_reference_is_resolved_with_a_patch_of_the_new_resource() -> None:
    server = FakeServer()
    operation = post_user(
        "me", "alice", **{"schemas": [USER_URN, ENTERPRISE], ENTERPRISE: {"manager": {"value": "bulkId:me"}}}
    )
    response = await run(bulk(operation), server)
    assert server.calls[0][2] == {"schemas": [USER_URN, ENTERPRISE], "userName": "alice"}
    assert server.calls[1][0:2] == ("PATCH", "/Users/user-1")
    assert server.resources["/Users/user-1"][ENTERPRISE] == {"manager": {"value": "user-1"}}
    assert results(response) == [
        {
            "method": "POST",
            "bulkId": "me",
            "location": f"{BASE}/Users/user-1",
            "version": 'W/"2"',
            "status": "201",
        }
    ]


async def test_cycle_keeps_the_members_that_do_not_close_it() -> None:
    server = FakeServer()
    await run(
        bulk(
            post_user("u", "alice"),
            post_group("a", "A", "bulkId:u", "bulkId:b"),
            post_group("b", "B", "bulkId:a"),
        ),
        server,
    )
    assert server.calls[1][2]["members"] == [{"value": "user-1"}]
    assert server.resources["/Groups/group-2"]["members"] == [{"value": "user-1"}, {"value": "group-3"}]
    assert server.resources["/Groups/group-3"]["members"] == [{"value": "group-2"}]


async def test_operation_waiting_on_a_cycle_runs_once_the_cycle_is_broken() -> None:
    server = FakeServer()
    response = await run(
        bulk(
            post_group("c", "C", "bulkId:a"),
            post_group("a", "A", "bulkId:b"),
            post_group("b", "B", "bulkId:a"),
        ),
        server,
    )
    assert [call[2].get("displayName") for call in server.calls[:3]] == ["A", "C", "B"]
    assert server.resources["/Groups/group-2"]["members"] == [{"value": "group-1"}]
    assert [entry["status"] for entry in results(response)] == ["201", "201", "201"]


async def test_cycle_whose_partner_fails_is_409_with_the_location_of_what_was_created() -> None:
    server = FakeServer(fail={"B": Uniqueness("displayName B is taken")})
    response = await run(bulk(post_group("a", "A", "bulkId:b"), post_group("b", "B", "bulkId:a")), server)
    first, second = results(response)
    assert first["status"] == "409" and first["location"] == f"{BASE}/Groups/group-1"
    assert "bulkId:b" in first["response"]["detail"]
    assert second["status"] == "409" and second["response"]["scimType"] == "uniqueness"
    assert [call[0] for call in server.calls] == ["POST", "POST"]


async def test_cycle_whose_patch_fails_is_409_with_the_location_of_what_was_created() -> None:
    server = FakeServer(
        fail={"PATCH /Groups/group-1": errors.InvalidValue("nested groups are not supported")}
    )
    response = await run(bulk(post_group("a", "A", "bulkId:b"), post_group("b", "B", "bulkId:a")), server)
    first, second = results(response)
    assert first["status"] == "409" and first["location"] == f"{BASE}/Groups/group-1"
    assert "nested groups are not supported" in first["response"]["detail"]
    assert second["status"] == "201"


async def test_cycle_whose_first_post_fails_reports_that_error() -> None:
    server = FakeServer(fail={"A": Uniqueness("displayName A is taken")})
    response = await run(bulk(post_group("a", "A", "bulkId:b"), post_group("b", "B", "bulkId:a")), server)
    assert [(e["status"], e["response"].get("scimType")) for e in results(response)] == [
        ("409", "uniqueness"),
        ("409", None),
    ]
    assert len(server.calls) == 1


# --- execution: failOnErrors and failures (RFC 7644 §3.7, §3.7.3) ---------------------------------------


async def test_fail_on_errors_stops_after_that_many_errors() -> None:
    server = FakeServer(fail={"DELETE /Users/x": NotFound("x"), "DELETE /Users/y": NotFound("y")})
    body = bulk(
        {"method": "DELETE", "path": "/Users/x"},
        post_user("a", "alice"),
        {"method": "DELETE", "path": "/Users/y"},
        post_user("b", "bob"),
        failOnErrors=2,
    )
    response = await run(body, server)
    assert [entry["status"] for entry in results(response)] == ["404", "201", "404"]
    assert len(server.calls) == 3


async def test_without_fail_on_errors_processing_continues_after_failures() -> None:
    server = FakeServer(fail={"DELETE /Users/x": NotFound("x"), "DELETE /Users/y": NotFound("y")})
    body = bulk(
        {"method": "DELETE", "path": "/Users/x"},
        {"method": "DELETE", "path": "/Users/y"},
        post_user("a", "alice"),
    )
    assert [entry["status"] for entry in results(await run(body, server))] == ["404", "404", "201"]


async def test_fail_on_errors_stop_reports_a_cycle_left_half_done_as_409() -> None:
    server = FakeServer(fail={"B": Uniqueness("displayName B is taken")})
    body = bulk(post_group("a", "A", "bulkId:b"), post_group("b", "B", "bulkId:a"), failOnErrors=1)
    first, second = results(await run(body, server))
    assert first["status"] == "409" and "failOnErrors" in first["response"]["detail"]
    assert first["location"] == f"{BASE}/Groups/group-1"
    assert second["status"] == "409"


@pytest.mark.parametrize(
    ("method", "path"),
    [
        ("POST", "/Users/1"),
        ("DELETE", "/Users"),
        ("PUT", "/Devices/1"),
        ("PATCH", "/Users/1/x"),
        ("DELETE", "Users/1"),
    ],
)
async def test_path_the_method_cannot_act_on_fails_that_operation_with_400_invalid_syntax(
    method: str, path: str
) -> None:
    server = FakeServer()
    operation: dict[str, Any] = {"method": method, "path": path, "bulkId": "x"}
    if method != "DELETE":
        operation["data"] = {"schemas": [USER_URN], "userName": "x"}
    response = await run(bulk(operation, post_user("a", "alice")), server)
    first, second = results(response)
    assert (first["status"], first["response"]["scimType"]) == ("400", "invalidSyntax")
    assert "location" not in first
    assert second["status"] == "201" and len(server.calls) == 1


async def test_error_status_returned_without_raising_is_a_failure_with_its_body() -> None:
    error_body = {"schemas": [errors.ERROR_SCHEMA], "status": "409", "detail": "busy"}

    async def dispatch(method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        return 409, error_body, None, None

    response = await execute_bulk(
        check(bulk({"method": "DELETE", "path": "/Users/1"}, failOnErrors=1)), dispatch
    )
    assert results(response) == [
        {"method": "DELETE", "location": "/Users/1", "status": "409", "response": error_body}
    ]


async def test_unexpected_exception_fails_that_operation_with_500_and_processing_continues() -> None:
    calls: list[str] = []

    async def dispatch(method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        calls.append(path)
        if path == "/Users/1":
            raise RuntimeError("database went away")
        return 204, None, None, None

    body = bulk({"method": "DELETE", "path": "/Users/1"}, {"method": "DELETE", "path": "/Users/2"})
    first, second = results(await execute_bulk(check(body), dispatch, base_url=BASE))
    assert first["status"] == "500" and first["response"]["status"] == "500"
    assert "database went away" not in first["response"]["detail"]
    assert second["status"] == "204" and calls == ["/Users/1", "/Users/2"]


# --- execution: the response entries (RFC 7644 §3.7.3) --------------------------------------------------


async def test_success_has_string_status_and_no_response_body() -> None:
    entry = results(await run(bulk(post_user("a", "alice")), FakeServer()))[0]
    assert entry == {
        "method": "POST",
        "bulkId": "a",
        "location": f"{BASE}/Users/user-1",
        "version": 'W/"1"',
        "status": "201",
    }


async def test_failed_post_has_no_location() -> None:
    server = FakeServer(fail={"alice": Uniqueness("taken")})
    assert "location" not in results(await run(bulk(post_user("a", "alice")), server))[0]


async def test_failed_put_has_the_location_of_its_path() -> None:
    operation = {"method": "PUT", "path": "/Users/42", "data": {"schemas": [USER_URN], "userName": "x"}}
    entry = results(await run(bulk(operation), FakeServer()))[0]
    assert (entry["status"], entry["location"]) == ("404", f"{BASE}/Users/42")


async def test_bulk_id_given_on_a_non_post_is_echoed() -> None:
    server = FakeServer()
    body = bulk(post_user("a", "alice"), {"method": "DELETE", "path": "/Users/bulkId:a", "bulkId": "gone"})
    assert results(await run(body, server))[1]["bulkId"] == "gone"


async def test_version_is_passed_to_the_dispatcher() -> None:
    server = FakeServer()
    await run(
        bulk(post_user("a", "alice"), {"method": "DELETE", "path": "/Users/bulkId:a", "version": 'W/"1"'}),
        server,
    )
    assert server.calls[1] == ("DELETE", "/Users/user-1", None, 'W/"1"')


async def test_created_id_is_taken_from_the_location_when_the_body_has_none() -> None:
    calls: list[tuple[str, str]] = []

    async def dispatch(method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        calls.append((method, path))
        if method == "POST":
            return 201, None, f"{BASE}/Users/abc", None
        return 204, None, None, None

    body = bulk(post_user("a", "alice"), {"method": "DELETE", "path": "/Users/bulkId:a"})
    await execute_bulk(check(body), dispatch, base_url=BASE)
    assert calls == [("POST", "/Users"), ("DELETE", "/Users/abc")]


async def test_location_is_built_from_base_url_when_the_dispatcher_gives_none() -> None:
    async def dispatch(method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        return 201, {"id": "abc"}, None, None

    entry = results(await execute_bulk(check(bulk(post_user("a", "alice"))), dispatch, base_url=BASE + "/"))[
        0
    ]
    assert entry["location"] == f"{BASE}/Users/abc"


async def test_post_whose_id_is_unknown_makes_its_references_fail_with_409() -> None:
    async def dispatch(method: str, path: str, data: Any, version: str | None) -> DispatchResult:
        return 201, None, None, None

    body = bulk(post_user("a", "alice"), {"method": "DELETE", "path": "/Users/bulkId:a"})
    first, second = results(await execute_bulk(check(body), dispatch, base_url=BASE))
    assert first["status"] == "201"
    assert second["status"] == "409" and "did not return the id" in second["response"]["detail"]
