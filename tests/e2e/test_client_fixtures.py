"""Recorded IdP traffic replayed against the server: one table-driven test over ``tests/fixtures/clients``.

Each fixture file holds one action of one client (Microsoft Entra ID's provisioning service or Okta's SCIM
client), written from the vendor's documentation (its ``source`` URL): the requests in the order the
client sends them, and what the server must answer. The test runs the steps in order against the ASGI
app with the workspace's token added, and stops at the first step that does not answer as expected.

File format::

    {"client": "entra" | "okta", "action": "...", "source": "<URL>",
     "headers": {...},            # optional: sent with every step (e.g. Okta's User-Agent)
     "content_type": "...",       # optional: Content-Type of steps with a body (application/scim+json)
     "steps": [{
        "name": "...", "method": "PATCH", "path": "/scim/v2/Users/{{user1}}",
        "headers": {...},         # optional, over the file's headers
        "auth": false,            # optional: do not add the workspace token
        "body": {...},            # optional: sent as UTF-8 JSON
        "expect": {"status": 200, "body": {...}, "absent": [...], "headers": {...}},
        "expect_events": {"TeamMemberAdded": 0},
        "save": {"user1": "id"}}]}

``{{name}}`` anywhere in a step (path, headers, body, expect) is replaced by a value saved by an earlier
step; ``save`` takes a top-level key of the response body or an RFC 6901 pointer (``/Resources/0/id``).

``expect.body`` is a subset: a dict matches when each key given matches (other keys are ignored); a list
must match element by element, in order and of the same length. Operators, each a one-key object:

- ``{"$contains": [...]}``: a list having a distinct matching element for each one given (any order);
- ``{"$unordered": [...]}``: the same, and no other elements;
- ``{"$empty": true}``: null or ``[]``; as the value of a key, the key may also be missing (RFC 7643
  §2.5: unassigned, null and an empty list are the same state);
- ``{"$nonempty": true}``: present and not null, ``""``, ``[]`` or ``{}``;
- ``{"$startswith": "..."}``: a string beginning so.

Scalars compare with their JSON types (``false`` is not ``"False"``, ``1`` is not ``true``).
``expect.absent`` lists keys that must not be in the body: a top-level name, or an RFC 6901 pointer.
``expect.headers`` names are case-insensitive; values are strings or operators as above.
``expect_events`` counts the rows of each event type that the step appended to the log.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Any

import httpx
import pytest

from tests.conftest import Workspace

FIXTURES = Path(__file__).resolve().parent.parent / "fixtures" / "clients"
PLACEHOLDER = re.compile(r"\{\{([A-Za-z0-9_]+)\}\}")
MISSING = object()


def fixture_params() -> list[Any]:
    """Every fixture file, loaded at collection, with the id ``<client>/<action>``."""
    params = []
    for path in sorted(FIXTURES.glob("*/*.json")):
        data = json.loads(path.read_text(encoding="utf-8"))
        params.append(pytest.param(data, id=f"{data['client']}/{data['action']}"))
    return params


def substitute(value: Any, saved: dict[str, str]) -> Any:
    """``{{name}}`` in every string of ``value`` replaced by the saved value."""
    if isinstance(value, str):

        def lookup(match: re.Match[str]) -> str:
            name = match.group(1)
            if name not in saved:
                raise KeyError(f"{{{{{name}}}}} is used before any step saved it")
            return saved[name]

        return PLACEHOLDER.sub(lookup, value)
    if isinstance(value, list):
        return [substitute(v, saved) for v in value]
    if isinstance(value, dict):
        return {substitute(k, saved): substitute(v, saved) for k, v in value.items()}
    return value


def resolve(document: Any, where: str) -> Any:
    """A top-level key, or an RFC 6901 pointer when ``where`` starts with ``/``; MISSING if absent."""
    tokens = [where] if not where.startswith("/") else where[1:].split("/")
    node = document
    for raw in tokens:
        token = raw.replace("~1", "/").replace("~0", "~")
        if isinstance(node, dict) and token in node:
            node = node[token]
        elif isinstance(node, list) and token.isdigit() and int(token) < len(node):
            node = node[int(token)]
        else:
            return MISSING
    return node


def is_operator(value: Any) -> bool:
    return isinstance(value, dict) and len(value) == 1 and next(iter(value)).startswith("$")


def mismatch(expected: Any, actual: Any, where: str) -> str | None:
    """Why ``actual`` does not match ``expected`` (see the module docstring), or None when it does."""
    if is_operator(expected):
        return operator_mismatch(expected, actual, where)
    if isinstance(expected, dict):
        if not isinstance(actual, dict):
            return f"{where}: expected an object, got {json.dumps(actual)}"
        for key, value in expected.items():
            if is_operator(value) and "$empty" in value and key not in actual:
                continue
            if key not in actual:
                return f"{where}/{key}: missing (expected {json.dumps(value)})"
            problem = mismatch(value, actual[key], f"{where}/{key}")
            if problem:
                return problem
        return None
    if isinstance(expected, list):
        if not isinstance(actual, list) or len(actual) != len(expected):
            shown = json.dumps(actual)
            return f"{where}: expected a list of {len(expected)} matching {json.dumps(expected)}, got {shown}"
        for index, (e, a) in enumerate(zip(expected, actual, strict=True)):
            problem = mismatch(e, a, f"{where}/{index}")
            if problem:
                return problem
        return None
    same_type = type(expected) is type(actual) or (
        isinstance(expected, int | float)
        and isinstance(actual, int | float)
        and not isinstance(expected, bool)
        and not isinstance(actual, bool)
    )
    if not same_type or expected != actual:
        return f"{where}: expected {json.dumps(expected)}, got {json.dumps(actual)}"
    return None


def assignment(expected: list[Any], actual: list[Any], used: frozenset[int] = frozenset()) -> bool:
    """Whether each expected element can be matched by a different actual element."""
    if not expected:
        return True
    first, rest = expected[0], expected[1:]
    for index, candidate in enumerate(actual):
        if (
            index not in used
            and mismatch(first, candidate, "") is None
            and assignment(rest, actual, used | {index})
        ):
            return True
    return False


def operator_mismatch(expected: dict[str, Any], actual: Any, where: str) -> str | None:
    ((name, argument),) = expected.items()
    shown = json.dumps(actual)
    if name in ("$contains", "$unordered"):
        if not isinstance(actual, list):
            return f"{where}: expected a list ({name} {json.dumps(argument)}), got {shown}"
        if name == "$unordered" and len(actual) != len(argument):
            wanted = json.dumps(argument)
            return f"{where}: expected exactly the {len(argument)} elements {wanted} (any order), got {shown}"
        if not assignment(list(argument), actual):
            return f"{where}: expected elements matching {json.dumps(argument)} ({name}), got {shown}"
        return None
    if name == "$empty":
        return None if actual is None or actual == [] else f"{where}: expected empty/unassigned, got {shown}"
    if name == "$nonempty":
        return None if actual not in (None, "", [], {}) else f"{where}: expected a value, got {shown}"
    if name == "$startswith":
        if isinstance(actual, str) and actual.startswith(argument):
            return None
        return f"{where}: expected a string starting {json.dumps(argument)}, got {shown}"
    raise ValueError(f"unknown operator {name} at {where}")


async def count_events(app: Any, types: list[str]) -> dict[str, int]:
    counts = {}
    for event_type in types:
        counts[event_type] = int(
            await app.state.pool.fetchval("SELECT count(*) FROM events WHERE event_type = $1", event_type)
        )
    return counts


def describe(step_label: str, problem: str, request: httpx.Request, response: httpx.Response) -> str:
    body = request.content.decode("utf-8", "replace")
    text = response.text
    return (
        f"{step_label}: {problem}\n"
        f"  request:  {request.method} {request.url.raw_path.decode()}"
        + (f"\n            {body[:1500]}" if body else "")
        + f"\n  response: {response.status_code} {response.headers.get('content-type', '')}"
        + (f"\n            {text[:3000]}" if text else "")
    )


def check(step: dict[str, Any], response: httpx.Response, appended: dict[str, int]) -> str | None:
    """What is wrong with the response to ``step`` (see the module docstring), or None."""
    expect = step.get("expect", {})
    statuses = expect.get("status", [])
    if not isinstance(statuses, list):
        statuses = [statuses]
    if statuses and response.status_code not in statuses:
        return f"status {response.status_code}, expected {' or '.join(map(str, statuses))}"
    body = response_json(response)
    if "body" in expect:
        if body is MISSING:
            return "expected a JSON body"
        problem = mismatch(expect["body"], body, "")
        if problem:
            return f"body {problem}"
    for where in expect.get("absent", []):
        if body is not MISSING and resolve(body, where) is not MISSING:
            return f"{where} must be absent, got {json.dumps(resolve(body, where))}"
    for name, value in expect.get("headers", {}).items():
        actual = response.headers.get(name)
        if actual is None:
            return f"header {name} missing"
        problem = mismatch(value, actual, f"header {name}")
        if problem:
            return problem
    for event_type, expected_count in step.get("expect_events", {}).items():
        if appended[event_type] != expected_count:
            return f"{appended[event_type]} {event_type} event(s) appended, expected {expected_count}"
    for name, where in step.get("save", {}).items():
        value = resolve(body, where) if body is not MISSING else MISSING
        if value is MISSING or value is None:
            return f"nothing at {where} to save as {name}"
    return None


def response_json(response: httpx.Response) -> Any:
    if not response.content:
        return MISSING
    try:
        return response.json()
    except ValueError:
        return MISSING


@pytest.mark.parametrize("fixture", fixture_params())
async def test_client_fixture(
    fixture: dict[str, Any], app: Any, client: httpx.AsyncClient, workspace: Workspace
) -> None:
    label = f"{fixture['client']}/{fixture['action']}"
    saved: dict[str, str] = {}
    for index, raw_step in enumerate(fixture["steps"], start=1):
        step = substitute(raw_step, saved)
        headers: dict[str, str] = {**fixture.get("headers", {}), **step.get("headers", {})}
        if step.get("auth", True) and not any(k.lower() == "authorization" for k in headers):
            headers.update(workspace.auth)
        content = None
        if "body" in step:
            content = json.dumps(step["body"], ensure_ascii=False).encode("utf-8")
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = fixture.get("content_type", "application/scim+json")
        event_types = list(step.get("expect_events", {}))
        before = await count_events(app, event_types)
        response = await client.request(step["method"], step["path"], headers=headers, content=content)
        after = await count_events(app, event_types)
        problem = check(step, response, {t: after[t] - before[t] for t in event_types})
        if problem:
            step_label = f"{label} step {index} {step['name']!r}"
            pytest.fail(describe(step_label, problem, response.request, response), pytrace=False)
        body = response_json(response)
        for name, where in step.get("save", {}).items():
            value = resolve(body, where)
            saved[name] = value if isinstance(value, str) else json.dumps(value)
