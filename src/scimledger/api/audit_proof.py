"""Tamper evidence over the admin API (issue 7): verify the key's workspace chain, sign a checkpoint of its
head, publish the public key. Admin key required; each answers for the key's own workspace only."""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from scimledger import chain
from scimledger.api.admin import _principal
from scimledger.api.responses import JSONResponse
from scimledger.audit import checkpoint
from scimledger.domain.errors import UnknownResource


async def verify(request: Request) -> Response:
    """``GET /api/v1/audit/verify``: the workspace's chain recomputed from the stored bytes, with the first
    bad position and why (``chain.ChainReport.as_dict``)."""
    principal = await _principal(request)
    report = await chain.verify_workspace(request.app.state.pool, principal.workspace_id)
    return JSONResponse(report.as_dict())


async def signed_checkpoint(request: Request) -> Response:
    """``GET /api/v1/audit/checkpoint``: a new checkpoint of the workspace's current head, signed now."""
    principal = await _principal(request)
    key = checkpoint.signing_key(request.app.state.settings.home)
    made = await checkpoint.checkpoint_now(request.app.state.pool, key, principal.workspace_id)
    if made is None:  # a workspace whose admin key resolves has events; kept for a log emptied by hand
        raise UnknownResource("the workspace has no events")
    return JSONResponse(made.as_dict())


async def public_key(request: Request) -> Response:
    """``GET /api/v1/audit/public-key``: the key that verifies this server's checkpoints (PEM)."""
    await _principal(request)
    key = checkpoint.signing_key(request.app.state.settings.home)
    return JSONResponse(checkpoint.public_key_document(key.public_key()))
