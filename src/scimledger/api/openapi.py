"""``GET /api/v1/openapi.json``: the OpenAPI 3.1 description of the admin API (kept true by a test).

The document is kept in parts, one per area of the API: ``openapi.json`` (workspace, tokens, members, teams)
and ``openapi_<area>.json`` beside it (e.g. the audit trail); their ``paths`` and ``components`` are merged.
"""

from __future__ import annotations

import json
from functools import cache
from pathlib import Path
from typing import Any

from starlette.requests import Request
from starlette.responses import Response

from scimledger.api.responses import JSONResponse

SPEC_PATH = Path(__file__).with_name("openapi.json")


def _merge(doc: dict[str, Any], part: dict[str, Any]) -> None:
    """A part's operations join (or replace, method by method) those of the same path."""
    for template, item in part.get("paths", {}).items():
        doc["paths"].setdefault(template, {}).update(item)
    for section, items in part.get("components", {}).items():
        doc.setdefault("components", {}).setdefault(section, {}).update(items)


@cache
def _spec_text() -> str:
    doc: dict[str, Any] = json.loads(SPEC_PATH.read_text())
    for part in sorted(SPEC_PATH.parent.glob("openapi_*.json")):
        _merge(doc, json.loads(part.read_text()))
    return json.dumps(doc)


def spec() -> dict[str, Any]:
    loaded: dict[str, Any] = json.loads(_spec_text())
    return loaded


async def document(request: Request) -> Response:
    return JSONResponse(spec())
