"""Discovery endpoints (RFC 7644 §4; RFC 7643 §5-§7): answer without a token (seed 004)."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from scimledger.api.body_limit import MAX_BODY_BYTES
from scimledger.api.requests import base_url
from scimledger.api.responses import ScimResponse
from scimledger.scim import discovery, listing, schemas
from scimledger.scim.errors import NotFound

BULK_MAX_OPERATIONS = 1000
BULK_MAX_PAYLOAD_SIZE = MAX_BODY_BYTES


async def service_provider_config(request: Request) -> Response:
    return ScimResponse(
        discovery.service_provider_config(
            base_url(request),
            bulk_max_operations=BULK_MAX_OPERATIONS,
            bulk_max_payload_size=BULK_MAX_PAYLOAD_SIZE,
            filter_max_results=discovery.MAX_COUNT,
        )
    )


async def resource_types(request: Request) -> Response:
    documents = schemas.resource_type_documents(base_url(request))
    name = request.path_params.get("name")
    if name is None:
        return ScimResponse(listing.list_response(documents, len(documents), start_index=1))
    for document in documents:
        if document["id"] == name or document["name"] == name:
            return ScimResponse(document)
    raise NotFound(f"ResourceType {name} not found")


async def schema_documents(request: Request) -> Response:
    base = base_url(request)
    documents = [schemas.schema_document(s, base_url=base) for s in schemas.SCHEMAS]
    urn = request.path_params.get("urn")
    if urn is None:
        return ScimResponse(listing.list_response(documents, len(documents), start_index=1))
    for document in documents:
        if document["id"].lower() == urn.lower():
            return ScimResponse(document)
    raise NotFound(f"Schema {urn} not found")
