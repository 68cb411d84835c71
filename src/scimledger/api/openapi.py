"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the admin API (kept true by a test)."""

from __future__ import annotations

import json
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response

from scimledger.api.responses import JSONResponse

SPEC_PATH = Path(__file__).with_name("openapi.json")


def spec() -> dict[str, object]:
    loaded: dict[str, object] = json.loads(SPEC_PATH.read_text())
    return loaded


async def document(request: Request) -> Response:
    return JSONResponse(spec())
