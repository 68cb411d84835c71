"""``GET /``: the identity provider admin's guide (README, "Connecting your IdP").

One static page (``static/idp-guide.html``) with this server's SCIM base URL filled in:
``SCIMLEDGER_PUBLIC_URL`` when set, else the request's own base URL (``requests.base_url``), HTML-escaped
since the request's ``Host`` header is the client's to choose. It holds no data of any workspace. No
script; its one inline stylesheet is allowed by its hash in the Content-Security-Policy, nothing else is.
"""

from __future__ import annotations

import base64
import hashlib
import html
import re
from functools import cache
from pathlib import Path
from string import Template

from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimledger.api.requests import base_url

PAGE = Path(__file__).with_name("static") / "idp-guide.html"


@cache
def _template() -> tuple[Template, dict[str, str]]:
    text = PAGE.read_text()
    style = re.search(r"<style>(.*?)</style>", text, re.S)
    assert style is not None, "idp-guide.html has its stylesheet inline"
    digest = base64.b64encode(hashlib.sha256(style.group(1).encode()).digest()).decode()
    policy = "; ".join(
        (
            "default-src 'none'",
            f"style-src 'sha256-{digest}'",
            "base-uri 'none'",
            "form-action 'none'",
            "frame-ancestors 'none'",
        )
    )
    headers = {
        "Content-Security-Policy": policy,
        "Cache-Control": "no-store",  # the URL shown depends on the request's Host
        "X-Content-Type-Options": "nosniff",
        "Referrer-Policy": "no-referrer",
    }
    return Template(text), headers


async def page(request: Request) -> Response:
    template, headers = _template()
    scim_base = base_url(request)
    api_base = scim_base.removesuffix("/scim/v2") + "/api/v1"
    body = template.substitute(scim_base=html.escape(scim_base), api_base=html.escape(api_base))
    return Response(body, media_type="text/html; charset=utf-8", headers=headers)


def routes() -> list[Route]:
    return [Route("/", page, methods=["GET"])]
