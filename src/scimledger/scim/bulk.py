"""SCIM bulk operations (RFC 7644 §3.7): check a BulkRequest, then run its operations through a dispatcher.

The module knows nothing of HTTP or storage. :func:`validate_bulk_request` checks the request body and the
limits of RFC 7644 §3.7.4 and returns a :class:`BulkRequest`; :func:`execute_bulk` runs its operations with
a *dispatcher* the server supplies, which performs ONE operation (the normal POST, PUT, PATCH or DELETE
handler for a path) and returns ``(status, body, location, version)`` or raises a
:class:`~.errors.ScimError`. The result is the BulkResponse body.

What the RFC fixes, and how it is done here:

- ``bulkId:<id>`` in a string value anywhere in ``data`` (a group member, the enterprise ``manager``, a
  PATCH value), or as the id of the ``path`` (``/Groups/bulkId:qwerty``), is replaced by the id of the
  resource the POST with that ``bulkId`` created (§3.7.2). The whole string is the reference; the
  dispatcher never sees one.
- Operations run in request order, except that an operation waits for the POSTs whose ``bulkId`` it
  references: §3.7 lets the server reorder provided the client's intent and the end state are kept, and a
  forward reference can only mean "after that POST". The response lists the operations in request order.
- Circular references (§3.7.1: the server "MUST try to resolve" them, and "MAY stop after a failed attempt
  and instead return HTTP status code 409"): only POSTs can form a cycle, since only a POST defines a
  ``bulkId``. The earliest POST of the cycle is created without the attributes (or the multi-valued
  attribute elements) that hold the unresolved references; once the other POSTs have created their
  resources, one path-less PATCH ``add`` (RFC 7644 §3.5.2.1) puts those values back with the real ids. If
  that fails (a partner POST failed, or the PATCH did), the operation is reported as 409 with the
  ``location`` of the resource it created.
- The service provider continues past failures; ``failOnErrors`` stops processing once that many
  operations have failed, and the response holds the operations processed so far (§3.7, §3.7.3).
- Response operations carry ``method``, ``bulkId`` when the request gave one, ``location`` (not for a
  failed POST, §3.7.3), ``version`` when known and ``status`` as a string; a failure carries the RFC 7644
  §3.12 error body in ``response``; a success has none (§3.7: the server "MAY elect to omit" it). §3.7.2
  prints ``"status": {"code": "201"}`` but §3.7.3's text and its examples print ``"status": "201"``; this
  follows §3.7.3.

Where the RFC is silent (each has a test in ``tests/unit/test_bulk.py``):

- A malformed bulk envelope (``schemas``, ``Operations``, ``method``, ``bulkId`` missing on a POST or not
  unique, ``data`` missing on POST/PUT/PATCH, ``failOnErrors``, ``version``) rejects the whole request with
  400 ``invalidSyntax``, the ``scimType`` RFC 7644 §3.12 Table 9 lists for Bulk. A ``path`` that is a string
  but names no endpoint the method can act on (POST needs ``/Users`` or ``/Groups``, the others
  ``/Users/<id>`` or ``/Groups/<id>``) fails only that operation, with 400 ``invalidSyntax``: it plays the
  part of a single request's URL. ``invalidPath`` is not used, as Table 9 defines it for PATCH paths only.
- A reference to a ``bulkId`` no POST of the request defines fails the operation with 400 ``invalidValue``;
  a reference to one whose POST failed, with 409 (no ``scimType``), like an unresolved cycle.
- ``location`` is the dispatcher's, else ``base_url`` + the operation's path; a failed PUT/PATCH/DELETE
  gets ``base_url`` + its path, as in the §3.7.3 example.
- An exception other than :class:`~.errors.ScimError` from the dispatcher fails that operation with 500
  and is logged; the other operations go on.
"""

from __future__ import annotations

import logging
from collections.abc import Awaitable, Callable, Iterator
from dataclasses import dataclass
from typing import Any

from .errors import ERROR_SCHEMA, Conflict, InvalidSyntax, InvalidValue, PayloadTooLarge, ScimError
from .patch import PATCH_OP_SCHEMA

__all__ = [
    "BULK_REQUEST_SCHEMA",
    "BULK_RESPONSE_SCHEMA",
    "BulkOperation",
    "BulkRequest",
    "Dispatch",
    "DispatchResult",
    "execute_bulk",
    "validate_bulk_request",
]

BULK_REQUEST_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkRequest"
BULK_RESPONSE_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:BulkResponse"
METHODS = ("POST", "PUT", "PATCH", "DELETE")
RESOURCE_ENDPOINTS = ("/Users", "/Groups")
BULK_ID_PREFIX = "bulkId:"

DispatchResult = tuple[int, dict[str, Any] | None, str | None, str | None]
"""``(status, body, location, version)`` of one operation, as the single-resource handler gives them."""

Dispatch = Callable[[str, str, Any, str | None], Awaitable[DispatchResult]]
"""``dispatch(method, path, data, version)``: perform one operation; raise a ScimError to fail it."""

_log = logging.getLogger(__name__)


class _InternalError(ScimError):
    """An unexpected failure of the dispatcher (RFC 7644 §3.12 Table 8, HTTP 500)."""

    status = 500


@dataclass(frozen=True)
class BulkOperation:
    """One entry of a BulkRequest's ``Operations`` (RFC 7644 §3.7), its ``method`` upper-cased.

    ``data`` is ``None`` for DELETE; ``path`` is as sent and is checked when the operation runs.
    """

    index: int
    method: str
    path: str
    bulk_id: str | None = None
    data: dict[str, Any] | None = None
    version: str | None = None


@dataclass(frozen=True)
class BulkRequest:
    """A checked BulkRequest (RFC 7644 §3.7): its operations in request order and ``failOnErrors``."""

    operations: tuple[BulkOperation, ...]
    fail_on_errors: int | None = None


# --- validation ----------------------------------------------------------------------------------------


def validate_bulk_request(
    body: Any, *, max_operations: int, max_payload_size: int, payload_size: int
) -> BulkRequest:
    """Check a BulkRequest body (RFC 7644 §3.7) against the service provider's limits (§3.7.4).

    ``payload_size`` is the size in bytes of the request body as received. Above ``max_payload_size``, or
    with more than ``max_operations`` operations, raises :class:`PayloadTooLarge` (413) naming the limit
    (§3.7.4: the response "MUST specify the limit exceeded"). A body that does not conform to the
    BulkRequest attributes of §3.7 raises :class:`InvalidSyntax` (§3.12 Table 9 lists ``invalidSyntax``
    for Bulk). Attribute names are matched case-insensitively (RFC 7643 §2.1); ``method`` too.
    """
    if payload_size > max_payload_size:
        raise PayloadTooLarge(
            f"The size of the bulk operation exceeds the maxPayloadSize ({max_payload_size})."
        )
    if not isinstance(body, dict):
        raise InvalidSyntax("a bulk request body must be a JSON object")
    schemas = _get(body, "schemas")
    if not isinstance(schemas, list) or not any(
        isinstance(s, str) and s.lower() == BULK_REQUEST_SCHEMA.lower() for s in schemas
    ):
        raise InvalidSyntax(f'"schemas" must contain "{BULK_REQUEST_SCHEMA}"')
    operations = _get(body, "Operations")
    # An empty multi-valued attribute is unassigned (RFC 7643 §2.5), and "Operations" is REQUIRED.
    if not isinstance(operations, list) or not operations:
        raise InvalidSyntax('"Operations" must be a non-empty list of operations')
    if len(operations) > max_operations:
        raise PayloadTooLarge(
            f"The number of operations in the bulk operation ({len(operations)}) exceeds the maxOperations "
            f"({max_operations})."
        )
    fail_on_errors = _get(body, "failOnErrors")
    if fail_on_errors is not None and (type(fail_on_errors) is not int or fail_on_errors < 1):
        raise InvalidSyntax('"failOnErrors" must be a positive integer')
    checked = tuple(_operation(index, raw) for index, raw in enumerate(operations))
    seen: set[str] = set()
    for operation in checked:
        if operation.bulk_id is not None:
            if operation.bulk_id in seen:
                # RFC 7644 §3.7: a bulkId is "unique within a bulk request".
                raise InvalidSyntax(f'"bulkId" "{operation.bulk_id}" is used by more than one operation')
            seen.add(operation.bulk_id)
    return BulkRequest(checked, fail_on_errors)


def _operation(index: int, raw: Any) -> BulkOperation:
    """Check one operation's attributes (RFC 7644 §3.7: method, bulkId, version, path, data)."""
    where = f"Operations[{index}]"
    if not isinstance(raw, dict):
        raise InvalidSyntax(f"{where} must be a JSON object")
    method = _get(raw, "method")
    if not isinstance(method, str) or method.upper() not in METHODS:
        raise InvalidSyntax(f'{where}: "method" must be one of POST, PUT, PATCH or DELETE')
    method = method.upper()
    path = _get(raw, "path")
    if not isinstance(path, str):
        raise InvalidSyntax(f'{where}: "path" is required and must be a string')
    bulk_id = _get(raw, "bulkId")
    if bulk_id is not None and (not isinstance(bulk_id, str) or not bulk_id):
        raise InvalidSyntax(f'{where}: "bulkId" must be a non-empty string')
    if method == "POST" and bulk_id is None:
        raise InvalidSyntax(f'{where}: "bulkId" is required when "method" is "POST"')
    data = _get(raw, "data")
    if method == "DELETE":
        data = None
    elif not isinstance(data, dict):
        raise InvalidSyntax(
            f'{where}: "data" is required when "method" is "{method}" and must be a JSON object'
        )
    version = _get(raw, "version")
    if version is not None and not isinstance(version, str):
        raise InvalidSyntax(f'{where}: "version" must be a string')
    return BulkOperation(index, method, path, bulk_id, data, version)


def _get(obj: dict[str, Any], name: str) -> Any:
    """``obj[name]`` with the attribute name matched case-insensitively (RFC 7643 §2.1)."""
    if name in obj:
        return obj[name]
    lowered = name.lower()
    return next((value for key, value in obj.items() if key.lower() == lowered), None)


# --- references ----------------------------------------------------------------------------------------


def _reference(value: str) -> str | None:
    """The bulkId a string refers to (``"bulkId:qwerty"`` → ``"qwerty"``, RFC 7644 §3.7.2), else None."""
    return value[len(BULK_ID_PREFIX) :] if value.startswith(BULK_ID_PREFIX) else None


def _strings(value: Any) -> Iterator[str]:
    """Every string value inside ``value`` (not the keys), without recursion."""
    stack = [value]
    while stack:
        item = stack.pop()
        if isinstance(item, str):
            yield item
        elif isinstance(item, dict):
            stack.extend(item.values())
        elif isinstance(item, list):
            stack.extend(item)


def _references(value: Any) -> set[str]:
    """The bulkIds referenced by the string values inside ``value``."""
    return {ref for s in _strings(value) if (ref := _reference(s)) is not None}


def _map_strings(value: Any, fn: Callable[[str], str]) -> Any:
    """A deep copy of the JSON ``value`` with ``fn`` applied to every string value, without recursion."""
    if isinstance(value, str):
        return fn(value)
    if not isinstance(value, dict | list):
        return value
    root: Any = {} if isinstance(value, dict) else [None] * len(value)
    stack: list[tuple[Any, Any]] = [(value, root)]
    while stack:
        source, target = stack.pop()
        items = source.items() if isinstance(source, dict) else enumerate(source)
        for key, item in items:
            new: Any
            if isinstance(item, dict):
                new = {}
                stack.append((item, new))
            elif isinstance(item, list):
                new = [None] * len(item)
                stack.append((item, new))
            elif isinstance(item, str):
                new = fn(item)
            else:
                new = item
            target[key] = new
    return root


def _parse_path(method: str, path: str) -> tuple[str, str | None]:
    """Split an operation's ``path`` into its endpoint and resource id (RFC 7644 §3.7, ``path``).

    POST must name a resource type endpoint (``/Users``, ``/Groups``); PUT, PATCH and DELETE a resource
    (``/Users/<id>``, where the id may be ``bulkId:<id>``). Anything else raises :class:`InvalidSyntax`.
    """
    for endpoint in RESOURCE_ENDPOINTS:
        if path == endpoint:
            if method == "POST":
                return endpoint, None
            raise InvalidSyntax(
                f'the "path" of a {method} operation must name one resource, such as "{endpoint}/<id>", '
                f'not "{path}"'
            )
        if path.startswith(endpoint + "/"):
            resource_id = path[len(endpoint) + 1 :]
            if method == "POST":
                raise InvalidSyntax(
                    f'the "path" of a POST operation must be a resource type endpoint ("{endpoint}"), '
                    f'not "{path}"'
                )
            if not resource_id or any(c in resource_id for c in "/?#"):
                raise InvalidSyntax(f'"{path}" is not a resource path of the form "{endpoint}/<id>"')
            return endpoint, resource_id
    endpoints = " or ".join(f'"{e}"' for e in RESOURCE_ENDPOINTS)
    raise InvalidSyntax(f'"path" must be {endpoints}, or one of them followed by "/<id>", not "{path}"')


# --- execution -----------------------------------------------------------------------------------------


@dataclass(frozen=True)
class _Plan:
    """An operation with its parsed path and the bulkIds it references (in its path and its data)."""

    op: BulkOperation
    endpoint: str | None
    resource_id: str | None
    path_error: ScimError | None
    refs: frozenset[str]


@dataclass(frozen=True)
class _Piece:
    """Part of a POST's data held back to break a reference cycle (RFC 7644 §3.7.1).

    ``keys`` is the attribute (``("members",)``, or an extension URN and its attribute); ``element`` says
    whether ``value`` is one element of a multi-valued attribute or the attribute's whole value.
    """

    keys: tuple[str, ...]
    value: Any
    element: bool
    refs: frozenset[str]


@dataclass
class _Split:
    """A POST created without its circular references, waiting to PATCH them back (RFC 7644 §3.7.1)."""

    op: BulkOperation
    path: str
    location: str
    version: str | None
    pieces: list[_Piece]
    waiting: frozenset[str]


def _plan(op: BulkOperation) -> _Plan:
    refs = _references(op.data)
    try:
        endpoint, resource_id = _parse_path(op.method, op.path)
    except ScimError as error:
        return _Plan(op, None, None, error, frozenset(refs))
    if resource_id is not None and (ref := _reference(resource_id)) is not None:
        refs.add(ref)
    return _Plan(op, endpoint, resource_id, None, frozenset(refs))


def _strip(data: dict[str, Any], waiting: frozenset[str]) -> tuple[dict[str, Any], list[_Piece]]:
    """Split POST ``data`` into what can be created now and the pieces that reference ``waiting`` bulkIds.

    A piece is an element of a multi-valued attribute (a group member) or a whole singular attribute (the
    enterprise ``manager``); attributes of an extension are looked at inside the extension's URN object.
    """
    kept: dict[str, Any] = {}
    pieces: list[_Piece] = []
    for key, value in data.items():
        if key.lower().startswith("urn:") and isinstance(value, dict):
            inner: dict[str, Any] = {}
            for name, attribute in value.items():
                _strip_attribute((key, name), attribute, waiting, inner, pieces)
            if inner or not value:
                kept[key] = inner
        else:
            _strip_attribute((key,), value, waiting, kept, pieces)
    return kept, pieces


def _strip_attribute(
    keys: tuple[str, ...], value: Any, waiting: frozenset[str], kept: dict[str, Any], pieces: list[_Piece]
) -> None:
    refs = _references(value) & waiting
    if not refs:
        kept[keys[-1]] = value
    elif isinstance(value, list):
        rest = []
        for element in value:
            element_refs = _references(element) & waiting
            if element_refs:
                pieces.append(_Piece(keys, element, True, frozenset(element_refs)))
            else:
                rest.append(element)
        if rest:
            kept[keys[-1]] = rest
    else:
        pieces.append(_Piece(keys, value, False, frozenset(refs)))


def _patch_value(pieces: list[_Piece]) -> dict[str, Any]:
    """The value of a path-less PATCH ``add`` (RFC 7644 §3.5.2.1) that puts ``pieces`` back."""
    value: dict[str, Any] = {}
    for piece in pieces:
        target = value
        for key in piece.keys[:-1]:
            target = target.setdefault(key, {})
        if piece.element:
            target.setdefault(piece.keys[-1], []).append(piece.value)
        else:
            target[piece.keys[-1]] = piece.value
    return value


def _error_body(status: int, body: dict[str, Any] | None) -> dict[str, Any]:
    return body if body else {"schemas": [ERROR_SCHEMA], "status": str(status)}


def _created_id(body: dict[str, Any] | None, location: str | None) -> str | None:
    """The id of a created resource: the body's ``id``, else the last segment of its location."""
    if body is not None and isinstance(body.get("id"), str) and body["id"]:
        return str(body["id"])
    if location:
        tail = location.rstrip("/").rsplit("/", 1)[-1]
        return tail or None
    return None


class _Executor:
    """The state of one bulk job: what has been created, what failed, and the results so far."""

    def __init__(self, request: BulkRequest, dispatch: Dispatch, base_url: str) -> None:
        self.dispatch = dispatch
        self.base_url = base_url.rstrip("/")
        self.fail_on_errors = request.fail_on_errors
        self.plans = [_plan(op) for op in request.operations]
        self.defined = {
            op.bulk_id: op.index for op in request.operations if op.method == "POST" and op.bulk_id
        }
        self.created: dict[str, str] = {}  # bulkId -> id of the resource its POST created
        self.failed: dict[str, str] = {}  # bulkId -> why it cannot be resolved
        self.pending = [op.index for op in request.operations]
        self.splits: dict[int, _Split] = {}
        self.results: dict[int, dict[str, Any]] = {}
        self.errors = 0

    # The loop: finish a cycle-broken POST if it can be, else run the earliest operation whose references
    # are settled, else break a cycle (RFC 7644 §3.7 ordering, §3.7.1 circular references).
    async def run(self) -> dict[str, Any]:
        while (self.pending or self.splits) and not self.stopped():
            split = next((s for s in self.splits.values() if self.settled(s.waiting)), None)
            if split is not None:
                del self.splits[split.op.index]
                await self.finish_split(split)
                continue
            ready = next((i for i in self.pending if self.ready(self.plans[i])), None)
            if ready is not None:
                self.pending.remove(ready)
                await self.execute(self.plans[ready])
                continue
            node = self.cycle_node()
            self.pending.remove(node)
            await self.execute_split(self.plans[node])
        for split in self.splits.values():
            detail = (
                f"created {split.location} without its circular references: processing stopped after "
                f"{self.errors} errors (failOnErrors) before they could be added"
            )
            self.record(split.op, Conflict(detail), location=split.location, version=split.version)
        operations = [self.results[index] for index in sorted(self.results)]
        return {"schemas": [BULK_RESPONSE_SCHEMA], "Operations": operations}

    def stopped(self) -> bool:
        """RFC 7644 §3.7: ``failOnErrors`` is the number of errors accepted before the job terminates."""
        return self.fail_on_errors is not None and self.errors >= self.fail_on_errors

    def waiting(self, refs: frozenset[str]) -> set[str]:
        """The referenced bulkIds whose POST has not run yet."""
        return {r for r in refs if r in self.defined and r not in self.created and r not in self.failed}

    def settled(self, refs: frozenset[str]) -> bool:
        return not self.waiting(refs)

    def ready(self, plan: _Plan) -> bool:
        """An operation can run once its references are settled, or at once if one cannot be resolved."""
        if plan.path_error is not None or any(r not in self.defined or r in self.failed for r in plan.refs):
            return True
        return self.settled(plan.refs)

    def cycle_node(self) -> int:
        """Every pending operation waits for a pending POST: follow the waits to a cycle (RFC 7644 §3.7.1).

        Returns the earliest operation of the cycle; only POSTs define bulkIds, so it is a POST.
        """
        seen: dict[int, int] = {}
        order: list[int] = []
        node = self.pending[0]
        while node not in seen:
            seen[node] = len(order)
            order.append(node)
            node = min(self.defined[r] for r in self.waiting(self.plans[node].refs))
        return min(order[seen[node] :])

    def resolve(self, value: Any) -> Any:
        """A copy of ``value`` with each created ``bulkId:<id>`` replaced by the resource id (§3.7.2)."""

        def replace(s: str) -> str:
            ref = _reference(s)
            return self.created.get(ref, s) if ref is not None else s

        return _map_strings(value, replace)

    def target(self, plan: _Plan) -> str | None:
        """The operation's path with a ``bulkId:`` id resolved, or None if it cannot be."""
        assert plan.endpoint is not None
        if plan.resource_id is None:
            return plan.endpoint
        ref = _reference(plan.resource_id)
        if ref is None:
            return f"{plan.endpoint}/{plan.resource_id}"
        return f"{plan.endpoint}/{self.created[ref]}" if ref in self.created else None

    def unresolvable(self, plan: _Plan) -> ScimError | None:
        """Why the operation's references cannot be resolved, if they cannot."""
        for ref in sorted(plan.refs):
            if ref not in self.defined:
                return InvalidValue(
                    f'"bulkId:{ref}" does not refer to the bulkId of a POST operation in this request'
                )
        for ref in sorted(plan.refs):
            if ref in self.failed:
                return Conflict(f'"bulkId:{ref}" cannot be resolved: {self.failed[ref]}')
        return None

    async def execute(self, plan: _Plan) -> None:
        op = plan.op
        if plan.path_error is not None:
            self.fail(op, plan.path_error, None)
            return
        path = self.target(plan)
        location = None if op.method == "POST" or path is None else self.base_url + path
        error = self.unresolvable(plan)
        if error is not None:
            self.fail(op, error, location)
            return
        assert path is not None
        await self.perform(op, path, self.resolve(op.data), location)

    async def perform(self, op: BulkOperation, path: str, data: Any, failure_location: str | None) -> None:
        """Dispatch one operation and record its result (RFC 7644 §3.7.3)."""
        outcome = await self.call(op.method, path, data, op.version)
        if isinstance(outcome, ScimError):
            self.fail(op, outcome, failure_location)
            return
        status, body, location, version = outcome
        if status >= 400:
            self.fail(op, None, failure_location, status=status, body=body)
            return
        if op.method == "POST":
            resource_id = self.note_created(op, body, location)
            if location is None and resource_id is not None:
                location = f"{self.base_url}{path}/{resource_id}"
        elif location is None:
            location = self.base_url + path
        self.record(op, status, location=location, version=version)

    async def call(
        self, method: str, path: str, data: Any, version: str | None
    ) -> DispatchResult | ScimError:
        try:
            return await self.dispatch(method, path, data, version)
        except ScimError as error:
            return error
        except Exception:
            _log.exception("bulk operation %s %s failed unexpectedly", method, path)
            return _InternalError(f"{method} {path} failed with an internal error")

    def note_created(
        self, op: BulkOperation, body: dict[str, Any] | None, location: str | None
    ) -> str | None:
        assert op.bulk_id is not None
        resource_id = _created_id(body, location)
        if resource_id is None:
            self.failed[op.bulk_id] = "its POST operation did not return the id of the created resource"
        else:
            self.created[op.bulk_id] = resource_id
        return resource_id

    async def execute_split(self, plan: _Plan) -> None:
        """Create a POST of a cycle without the pieces that reference the cycle (RFC 7644 §3.7.1)."""
        op = plan.op
        assert op.data is not None and op.bulk_id is not None and plan.endpoint is not None
        waiting = frozenset(self.waiting(plan.refs))
        kept, pieces = _strip(op.data, waiting)
        outcome = await self.call("POST", plan.endpoint, self.resolve(kept), op.version)
        if isinstance(outcome, ScimError):
            self.fail(op, outcome, None)
            return
        status, body, location, version = outcome
        if status >= 400:
            self.fail(op, None, None, status=status, body=body)
            return
        resource_id = self.note_created(op, body, location)
        if resource_id is None:
            detail = "the POST did not return the id of the created resource, so its circular references"
            self.record(op, Conflict(f"{detail} could not be added"), location=location, version=version)
            return
        path = f"{plan.endpoint}/{resource_id}"
        location = location or self.base_url + path
        self.splits[op.index] = _Split(op, path, location, version, pieces, waiting)

    async def finish_split(self, split: _Split) -> None:
        """PATCH back the held-back pieces whose references now resolve; 409 if some cannot (§3.7.1)."""
        op = split.op
        good = [p for p in split.pieces if not any(r in self.failed for r in p.refs)]
        failed = sorted({r for p in split.pieces for r in p.refs if r in self.failed})
        version = split.version
        if good:
            patch = {
                "schemas": [PATCH_OP_SCHEMA],
                "Operations": [{"op": "add", "value": self.resolve(_patch_value(good))}],
            }
            outcome = await self.call("PATCH", split.path, patch, None)
            if isinstance(outcome, ScimError) or outcome[0] >= 400:
                reason = outcome.detail if isinstance(outcome, ScimError) else f"status {outcome[0]}"
                detail = (
                    f"created {split.location} without its circular references; adding them failed: {reason}"
                )
                self.record(op, Conflict(detail), location=split.location, version=version)
                return
            version = outcome[3] or version
        if failed:
            refs = ", ".join(f'"bulkId:{r}" ({self.failed[r]})' for r in failed)
            detail = f"created {split.location} without its circular references to {refs}"
            self.record(op, Conflict(detail), location=split.location, version=version)
            return
        self.record(op, 201, location=split.location, version=version)

    def fail(
        self,
        op: BulkOperation,
        error: ScimError | None,
        location: str | None,
        *,
        status: int = 0,
        body: dict[str, Any] | None = None,
    ) -> None:
        """Record a failed operation; a failed POST's bulkId can no longer be resolved."""
        if error is not None:
            status, response = error.status, error.body()
        else:
            response = _error_body(status, body)
        if op.method == "POST" and op.bulk_id is not None and op.bulk_id not in self.created:
            self.failed.setdefault(op.bulk_id, f"its POST operation failed with status {status}")
        self.record(op, status, location=location, response=response)

    def record(
        self,
        op: BulkOperation,
        outcome: int | ScimError,
        *,
        location: str | None = None,
        version: str | None = None,
        response: dict[str, Any] | None = None,
    ) -> None:
        """Add an operation's entry to the BulkResponse (RFC 7644 §3.7, §3.7.3) and count its error."""
        if isinstance(outcome, ScimError):
            status, response = outcome.status, outcome.body()
        else:
            status = outcome
        entry: dict[str, Any] = {"method": op.method}
        if op.bulk_id is not None:
            entry["bulkId"] = op.bulk_id
        if location:
            entry["location"] = location
        if version:
            entry["version"] = version
        entry["status"] = str(status)
        if response is not None:
            entry["response"] = response
        self.results[op.index] = entry
        if status >= 400:
            self.errors += 1


async def execute_bulk(request: BulkRequest, dispatch: Dispatch, *, base_url: str = "") -> dict[str, Any]:
    """Run a checked bulk request (RFC 7644 §3.7) and return the BulkResponse body (§3.7.3).

    ``dispatch(method, path, data, version)`` performs one operation on a resolved path such as
    ``/Groups/<id>`` and returns ``(status, body, location, version)``, or raises a ScimError (a returned
    status of 400 or more counts as a failure too, with ``body`` as the error). ``base_url`` (such as
    ``https://example.com/v2``) prefixes the locations the module has to make up itself: those of failed
    PUT/PATCH/DELETE operations and of successes the dispatcher gave no location for.

    ``bulkId:`` references are resolved (§3.7.2), operations wait for the POSTs they reference, cycles are
    broken with a POST and a PATCH (§3.7.1), and ``failOnErrors`` stops the job (§3.7). The input is never
    modified: the dispatcher receives copies of ``data``.
    """
    return await _Executor(request, dispatch, base_url).run()
