"""SCIM protocol errors, one class per ``scimType`` (RFC 7644 §3.12).

Each exception knows its HTTP status and renders the RFC 7644 §3.12 error body; the API maps them to
responses in exactly one place.
"""

from __future__ import annotations

from typing import Any, ClassVar

ERROR_SCHEMA = "urn:ietf:params:scim:api:messages:2.0:Error"


class ScimError(Exception):
    """Base SCIM error: an HTTP status, an optional ``scimType`` and a human-readable detail."""

    status: ClassVar[int] = 400
    scim_type: ClassVar[str | None] = None

    def __init__(self, detail: str) -> None:
        super().__init__(detail)
        self.detail = detail

    def body(self) -> dict[str, Any]:
        """The RFC 7644 §3.12 error body."""
        out: dict[str, Any] = {"schemas": [ERROR_SCHEMA], "status": str(self.status), "detail": self.detail}
        if self.scim_type is not None:
            out["scimType"] = self.scim_type
        return out


class InvalidFilter(ScimError):
    """The specified filter syntax or attribute is invalid (RFC 7644 §3.12, ``invalidFilter``)."""

    scim_type = "invalidFilter"


class TooMany(ScimError):
    """The filter yields more results than the server is willing to return (``tooMany``)."""

    scim_type = "tooMany"


class Uniqueness(ScimError):
    """One or more unique attribute values are already in use (``uniqueness``, HTTP 409)."""

    status = 409
    scim_type = "uniqueness"


class Mutability(ScimError):
    """The attempted modification is not compatible with the attribute's mutability (``mutability``)."""

    scim_type = "mutability"


class InvalidSyntax(ScimError):
    """The request body structure was invalid or did not conform to the schema (``invalidSyntax``)."""

    scim_type = "invalidSyntax"


class InvalidPath(ScimError):
    """The ``path`` attribute was invalid or malformed (``invalidPath``)."""

    scim_type = "invalidPath"


class NoTarget(ScimError):
    """The specified ``path`` did not yield an attribute that could be operated on (``noTarget``)."""

    scim_type = "noTarget"


class InvalidValue(ScimError):
    """A required value was missing or the value specified was not compatible (``invalidValue``)."""

    scim_type = "invalidValue"


class InvalidVersion(ScimError):
    """The specified SCIM protocol version is not supported (``invalidVersion``)."""

    scim_type = "invalidVers"  # sic: RFC 7644 §3.12, Table 9


class Sensitive(ScimError):
    """The request cannot be completed because of sensitive information in the URI (``sensitive``)."""

    status = 403
    scim_type = "sensitive"


class InvalidCursor(ScimError):
    """The cursor value is invalid or malformed (RFC 9865 §4, ``invalidCursor``)."""

    scim_type = "invalidCursor"


class ExpiredCursor(ScimError):
    """The cursor has expired (RFC 9865 §4, ``expiredCursor``)."""

    scim_type = "expiredCursor"


class InvalidCount(ScimError):
    """The count value is invalid (RFC 9865 §4, ``invalidCount``)."""

    scim_type = "invalidCount"


class Unauthorized(ScimError):
    """Authorization failed: missing or invalid bearer token (RFC 7644 §2, HTTP 401)."""

    status = 401


class Forbidden(ScimError):
    """The token is valid but lacks the scope the operation needs (HTTP 403)."""

    status = 403


class NotFound(ScimError):
    """The resource does not exist, or is not visible to this workspace (HTTP 404)."""

    status = 404


class Conflict(ScimError):
    """A conflicting concurrent change (HTTP 409, no ``scimType``)."""

    status = 409


class PreconditionFailed(ScimError):
    """``If-Match`` did not match the resource's current version (RFC 7644 §3.14, HTTP 412)."""

    status = 412


class PayloadTooLarge(ScimError):
    """The request exceeds the advertised bulk limits (RFC 7644 §3.7.4, HTTP 413)."""

    status = 413


class TooManyRequests(ScimError):
    """The caller is over its request rate (HTTP 429, RFC 6585 §4); ``retry_after`` seconds to wait."""

    status = 429

    def __init__(self, detail: str, retry_after: int) -> None:
        super().__init__(detail)
        self.retry_after = retry_after


class MethodNotAllowed(ScimError):
    """The endpoint does not support this HTTP method (HTTP 405)."""

    status = 405
