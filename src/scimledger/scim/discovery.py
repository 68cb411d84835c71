"""The ``/ServiceProviderConfig`` document (RFC 7643 §5, RFC 7644 §4), with RFC 9865 §4 ``pagination``.

It states what this server does, and nothing more:

- PATCH (RFC 7644 §3.5.2), sorting (§3.4.2.3) and ETags (§3.14) are supported;
- Bulk (§3.7) is supported with the limits the caller passes (``supported`` is false when a limit is 0);
- filtering (§3.4.2.2) is supported; ``maxResults`` is the most resources one response holds, so it
  never exceeds :data:`MAX_COUNT`, the largest page :mod:`scimledger.scim.listing` serves;
- changing passwords is not supported (``password`` is not accepted);
- the one authentication scheme is an OAuth 2.0 bearer token (RFC 6750);
- both index (RFC 7644 §3.4.2.4) and cursor (RFC 9865) pagination are supported, index being the default
  as RFC 9865 §2.4 advises for providers that had index pagination first.

The document has no ``id``: "Unlike other core resources, the 'id' attribute is not required for the
service provider configuration resource" (RFC 7643 §5).
"""

from __future__ import annotations

from typing import Any

from .listing import CURSOR_TTL_SECONDS, DEFAULT_COUNT, MAX_COUNT

__all__ = [
    "CURSOR_TTL_SECONDS",
    "DEFAULT_COUNT",
    "MAX_COUNT",
    "OAUTH_BEARER_SPEC_URI",
    "SERVICE_PROVIDER_CONFIG_SCHEMA",
    "service_provider_config",
]

SERVICE_PROVIDER_CONFIG_SCHEMA = "urn:ietf:params:scim:schemas:core:2.0:ServiceProviderConfig"
OAUTH_BEARER_SPEC_URI = "https://www.rfc-editor.org/info/rfc6750"


def service_provider_config(
    base_url: str,
    *,
    bulk_max_operations: int,
    bulk_max_payload_size: int,
    filter_max_results: int,
    documentation_uri: str | None = None,
    cursor_timeout: int = CURSOR_TTL_SECONDS,
) -> dict[str, Any]:
    """The ServiceProviderConfig resource (RFC 7643 §5, §8.5; RFC 9865 §4).

    ``base_url`` is the SCIM base URL (``meta.location`` is ``{base_url}/ServiceProviderConfig``);
    ``bulk_max_operations`` and ``bulk_max_payload_size`` (bytes) are the Bulk limits (RFC 7644 §3.7.4);
    ``filter_max_results`` the most resources a filtered query returns; ``cursor_timeout`` the seconds a
    cursor stays valid, as passed to :func:`scimledger.scim.listing.encode_cursor`. Raises ValueError
    for negative limits or a non-positive ``filter_max_results`` or ``cursor_timeout``.
    """
    if bulk_max_operations < 0 or bulk_max_payload_size < 0:
        raise ValueError("bulk limits must not be negative")
    if filter_max_results < 1 or cursor_timeout < 1:
        raise ValueError("filter_max_results and cursor_timeout must be positive")
    document: dict[str, Any] = {"schemas": [SERVICE_PROVIDER_CONFIG_SCHEMA]}
    if documentation_uri is not None:
        document["documentationUri"] = documentation_uri
    document.update(
        {
            "patch": {"supported": True},
            "bulk": {
                "supported": bulk_max_operations > 0 and bulk_max_payload_size > 0,
                "maxOperations": bulk_max_operations,
                "maxPayloadSize": bulk_max_payload_size,
            },
            "filter": {"supported": True, "maxResults": min(filter_max_results, MAX_COUNT)},
            "changePassword": {"supported": False},
            "sort": {"supported": True},
            "etag": {"supported": True},
            "authenticationSchemes": [
                {
                    "type": "oauthbearertoken",
                    "name": "OAuth Bearer Token",
                    "description": "Authentication scheme using the OAuth Bearer Token Standard",
                    "specUri": OAUTH_BEARER_SPEC_URI,
                    "primary": True,
                }
            ],
            "pagination": {
                "cursor": True,
                "index": True,
                "defaultPaginationMethod": "index",
                "defaultPageSize": DEFAULT_COUNT,
                "maxPageSize": MAX_COUNT,
                "cursorTimeout": cursor_timeout,
            },
            "meta": {
                "resourceType": "ServiceProviderConfig",
                "location": f"{base_url.rstrip('/')}/ServiceProviderConfig",
            },
        }
    )
    return document
