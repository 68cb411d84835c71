"""``/admin``: the audit page for workspace admins (issue 7, "Audit page").

A static page over the admin API (``api/static/``: one HTML file, one script, one stylesheet; no build
step). It holds no data of its own: the browser signs in with the admin key (kept in ``sessionStorage``)
and calls ``/api/v1``. Served outside ``/api/v1`` so it stays out of the OpenAPI document, with a strict
Content-Security-Policy (scripts and styles from this origin only, no inline script, no frames, no form
submissions) and ``Cache-Control: no-store``.
"""

from __future__ import annotations

from functools import cache
from pathlib import Path

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimledger.domain.errors import UnknownResource

STATIC = Path(__file__).with_name("static")

# Every file the page is made of, and its media type; nothing else is served from ``static/``.
ASSETS = {
    "admin.html": "text/html; charset=utf-8",
    "admin.js": "text/javascript; charset=utf-8",
    "admin.css": "text/css; charset=utf-8",
    "favicon.svg": "image/svg+xml",
}

CONTENT_SECURITY_POLICY = "; ".join(
    (
        "default-src 'none'",
        "script-src 'self'",
        "style-src 'self'",
        "connect-src 'self'",
        "img-src 'self'",
        "base-uri 'none'",
        "form-action 'none'",
        "frame-ancestors 'none'",
    )
)

HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
}


@cache
def _read(name: str) -> bytes:
    return (STATIC / name).read_bytes()


def _serve(name: str) -> Response:
    return Response(_read(name), media_type=ASSETS[name], headers=HEADERS)


async def page(request: Request) -> Response:
    """The page itself (``GET /admin``)."""
    return _serve("admin.html")


async def asset(request: Request) -> Response:
    """Its script, stylesheet and icon (``GET /admin/admin.js``, ``/admin/admin.css``, ...)."""
    name = request.path_params["name"]
    if name not in ASSETS or name == "admin.html":
        raise UnknownResource(f"/admin/{name} not found")
    return _serve(name)


def routes() -> list[Route]:
    return [
        Route("/admin", page, methods=["GET"]),
        Route("/admin/{name}", asset, methods=["GET"]),
    ]
