"""``POST /api/v1/members/{id}/erase``: erase a member's personal data (issue 11; README "Erasure
(crypto-shredding)"). Body ``{"reason": "..."}`` (optional; kept in clear in the log: no personal data in
it). 200 with the ``PersonalDataErased`` event's position and time; 409 ``not_erasable`` (an active or
suspended member: deprovision it first; or one recorded before encryption), ``already_erased`` or
``last_admin``; 404 for a member of another workspace; 400 for a malformed body.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from scimledger.api.admin import _body, _field, _id, _meta, _principal
from scimledger.api.responses import JSONResponse
from scimledger.audit.entries import timestamp
from scimledger.handlers.erase import ErasePerson, erase_person


async def erase_member(request: Request) -> Response:
    principal = await _principal(request)
    member_id = _id(request, "member")
    reason = _field(await _body(request), "reason", str, required=False)
    command = ErasePerson(principal.workspace_id, member_id, reason)
    erased = await erase_person(request.app.state.store, command, _meta(request, principal))
    return JSONResponse(
        {
            "id": str(erased.member_id),
            "erased": True,
            "erased_at": timestamp(erased.erased_at),
            "position": erased.position,
            "reason": erased.reason,
        }
    )
