"""Exceptions to responses, in one place (RFC 7644 §3.12 bodies on ``/scim/v2``, JSON on ``/api/v1``).

Domain errors map to SCIM errors here: AlreadyTaken → 409 ``uniqueness``; UnknownResource → 404;
NoFreeSeat, LastAdmin and InvalidCommand → 400 (``mutability`` for the last admin, ``invalidValue`` else).
"""

from __future__ import annotations

import logging

import asyncpg
from starlette.exceptions import HTTPException
from starlette.requests import Request
from starlette.responses import Response

from scimledger.api.responses import JSONResponse, ScimResponse
from scimledger.domain.errors import (
    AlreadyTaken,
    DomainError,
    LastAdmin,
    NoFreeSeat,
    NotManaged,
    UnknownResource,
    VersionMismatch,
)
from scimledger.scim import errors as scim
from scimledger.store.commit import CommitInDoubt, committed
from scimledger.store.recorder import VersionConflict

log = logging.getLogger("scimledger")


def scim_error_for(error: DomainError) -> scim.ScimError:
    if isinstance(error, AlreadyTaken):
        return scim.Uniqueness(error.message)
    if isinstance(error, UnknownResource):
        return scim.NotFound(error.message)
    if isinstance(error, NotManaged | NoFreeSeat):
        return scim.Forbidden(error.message)
    if isinstance(error, VersionMismatch):
        return scim.PreconditionFailed(error.message)
    if isinstance(error, LastAdmin):
        return scim.Mutability(error.message)
    return scim.InvalidValue(error.message)


ADMIN_STATUS = {
    "uniqueness": 409,
    "not_found": 404,
    "precondition_failed": 412,
    "not_managed": 403,
    "no_free_seat": 409,
    "last_admin": 409,
    "last_admin_key": 409,  # issue 10: a workspace keeps at least one active admin key
    "domain_not_proven": 409,  # issue 8: the DNS challenge is not (yet) published
    "not_erasable": 409,  # issue 11: only deprovisioned members, or invites never accepted
    "already_erased": 409,
}


def _is_scim(request: Request) -> bool:
    return request.url.path.startswith("/scim/")


def _render(request: Request, error: scim.ScimError, code: str | None = None) -> Response:
    # RFC 6750 §3: a 401 names the scheme the client should use.
    headers = {"WWW-Authenticate": 'Bearer realm="scimledger"'} if error.status == 401 else None
    if isinstance(error, scim.TooManyRequests):
        headers = {"Retry-After": str(error.retry_after)}
    if _is_scim(request):
        return ScimResponse(error.body(), status_code=error.status, headers=headers)
    code = code or error.scim_type or ("rate_limited" if error.status == 429 else str(error.status))
    body = {"error": {"code": code, "message": error.detail}}
    return JSONResponse(body, status_code=error.status, headers=headers)


def render_error(request: Request, error: scim.ScimError) -> Response:
    """The error response for ``request``'s API (for middleware, which runs outside the handlers)."""
    return _render(request, error)


async def on_scim_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, scim.ScimError)
    return _render(request, exc)


async def on_domain_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, DomainError)
    error = scim_error_for(exc)
    if not _is_scim(request):
        status = ADMIN_STATUS.get(exc.code, 400 if error.status < 500 else error.status)
        return JSONResponse({"error": {"code": exc.code, "message": exc.message}}, status_code=status)
    return _render(request, error)


async def on_conflict(request: Request, exc: Exception) -> Response:
    return _render(
        request, scim.Conflict("the resource was changed concurrently; retry the request"), "conflict"
    )


async def on_http_error(request: Request, exc: Exception) -> Response:
    assert isinstance(exc, HTTPException)
    error = scim.ScimError(exc.detail)
    error.status = exc.status_code  # type: ignore[misc]
    return _render(request, error, "not_found" if exc.status_code == 404 else str(exc.status_code))


async def on_bad_data(request: Request, exc: Exception) -> Response:
    """PostgreSQL class 22 (data exception): a value the client sent cannot be stored or compared (a NUL
    character, an out-of-range number). Nothing was written: the transaction rolled back."""
    log.info("data exception on %s %s: %s", request.method, request.url.path, exc)
    detail = "a value in the request cannot be stored or compared (out of range, or a NUL character)"
    return _render(request, scim.InvalidValue(detail), "invalid_value")


async def on_too_large(request: Request, exc: Exception) -> Response:
    """PostgreSQL class 54 (program limit exceeded): a value too long to index (say a 6,000-character
    userName). Nothing was written."""
    log.info("limit exceeded on %s %s: %s", request.method, request.url.path, exc)
    return _render(request, scim.InvalidValue("a value in the request is too long"), "invalid_value")


RETRY_AFTER_SECONDS = 1
IN_DOUBT = "the database stopped answering while this change was being committed: it may have been applied"
APPLIED = "this change was committed, but the database stopped answering before the answer was read back"


def _unavailable(request: Request, detail: str, code: str) -> Response:
    error = scim.ScimError(detail)
    error.status = 503  # type: ignore[misc]
    response = _render(request, error, code)
    response.headers["Retry-After"] = str(RETRY_AFTER_SECONDS)
    return response


async def on_database_unavailable(request: Request, exc: Exception) -> Response:
    """PostgreSQL is unreachable or shutting down (issue 8, defect 9): 503 with ``Retry-After``, one log
    line, and the client's keep-alive connection stays open (a handled error, not a server crash). Nothing
    was acknowledged, so the client's retry is safe; unless this request had committed its change before it
    failed to read its answer back (store/commit.py): then the answer says the change was applied."""
    log.warning("database unavailable on %s %s: %s", request.method, request.url.path, type(exc).__name__)
    if committed():
        return _unavailable(request, f"{APPLIED}; read it back when the database is available", "committed")
    return _unavailable(request, "the database is unavailable; retry shortly", "unavailable")


async def on_commit_in_doubt(request: Request, exc: Exception) -> Response:
    """The connection was lost while COMMIT was in flight (store/commit.py): 503 with ``Retry-After`` as in
    an outage, but the detail does not claim that nothing was written (a retried create answers 409 if
    the first one was)."""
    log.warning("commit in doubt on %s %s", request.method, request.url.path)
    return _unavailable(request, f"{IN_DOUBT}; retry it", "commit_in_doubt")


async def on_unexpected(request: Request, exc: Exception) -> Response:
    log.exception("unexpected error on %s %s", request.method, request.url.path)
    error = scim.ScimError("internal server error")
    error.status = 500  # type: ignore[misc]
    return _render(request, error, "internal")


HANDLERS = {
    scim.ScimError: on_scim_error,
    DomainError: on_domain_error,
    VersionConflict: on_conflict,
    HTTPException: on_http_error,
    CommitInDoubt: on_commit_in_doubt,
    asyncpg.DataError: on_bad_data,
    asyncpg.ProgramLimitExceededError: on_too_large,
    asyncpg.PostgresConnectionError: on_database_unavailable,
    asyncpg.OperatorInterventionError: on_database_unavailable,
    asyncpg.TooManyConnectionsError: on_database_unavailable,
    asyncpg.InterfaceError: on_database_unavailable,
    ConnectionError: on_database_unavailable,
    Exception: on_unexpected,
}
