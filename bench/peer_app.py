"""The peer: ``scim2-server`` (PyPI), an in-memory SCIM 2.0 server, served as fast as it can be served.

``scim2-server`` the command serves its WSGI application with ``wsgiref`` (a thread per request, no
keep-alive): measuring that would measure wsgiref. Here its ASGI application (``ASGIApplication`` over
``AsyncInMemoryStorage``, the package's own) runs on the same server stack as scimledger (uvicorn with uvloop
and httptools), with the provider its command builds (RFC 7643 schemas and resource types, its default
service provider configuration) and a static bearer token checked like its command's
``BearerTokenApplication``. One worker only: the storage lives in the process's memory.
Before it serves, ``--seed-users N --seed-groups G --seed-out FILE`` makes N users and G empty groups through
its own create path, in-process, and writes their ids to FILE.
Run: ``python bench/peer_app.py --host H --port P --workers 1 --token T [--seed-users N ...]``.
"""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

import uvicorn
from scim2_models import ScimProvider, UnauthorizedException
from scim2_server.applications.asgi import ASGIApplication
from scim2_server.memory import AsyncInMemoryStorage
from scim2_server.requests import ScimRequest
from scim2_server.testserver.application import BEARER_TOKEN_SCHEME
from scim2_server.utils import (
    load_default_resource_types,
    load_default_schemas,
    load_default_service_provider_config,
)


class TokenApplication(ASGIApplication):
    """The ASGI application, refusing a request without the bearer token (as the command does)."""

    def __init__(self, token: str) -> None:
        config = load_default_service_provider_config()
        config.authentication_schemes = [*(config.authentication_schemes or []), BEARER_TOKEN_SCHEME]
        provider = ScimProvider.from_discovery(
            load_default_schemas().values(), load_default_resource_types().values(), config=config
        )
        super().__init__(AsyncInMemoryStorage(), provider)
        self.token = token

    def check_auth(self, request: ScimRequest) -> None:
        scheme, _, token = (request.header("Authorization") or "").partition(" ")
        if scheme.lower() != "bearer" or token != self.token:
            raise UnauthorizedException


def seed(app: TokenApplication, users: int, groups: int, domain: str) -> dict[str, list[str]]:
    """``users`` users (the bodies scimledger gets, ``user-<n>@<domain>``) and ``groups`` empty groups, made
    in-process as its create handler makes them (``read_creation``, then the storage's ``create``)."""
    from pools import dumps, group_body, user_body

    storage = app.storage
    assert isinstance(storage, AsyncInMemoryStorage)
    made: dict[str, list[str]] = {"users": [], "groups": []}
    with app.service.provider:
        for kind, endpoint, count in (("users", "/Users", users), ("groups", "/Groups", groups)):
            resource_type = app.service.resource_type_at(endpoint)
            for n in range(1, count + 1):
                body = user_body(n, domain) if kind == "users" else group_body(f"peer group {n}", [])
                read = app.service.read_creation(resource_type, dumps(body).encode(), "application/scim+json")
                made[kind].append(str(storage.storage.create(resource_type, read).id))
    return made


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--host", default="127.0.0.1")
    parser.add_argument("--port", type=int, default=8003)
    parser.add_argument("--workers", type=int, default=1, choices=[1])
    parser.add_argument("--token", required=True)
    parser.add_argument("--seed-users", type=int, default=0)
    parser.add_argument("--seed-groups", type=int, default=0)
    parser.add_argument("--domain", default="peer.bench.test")
    parser.add_argument("--seed-out", type=Path, help="where to write the seeded ids (JSON)")
    args = parser.parse_args()
    app: Any = TokenApplication(args.token)
    if args.seed_out:
        args.seed_out.write_text(json.dumps(seed(app, args.seed_users, args.seed_groups, args.domain)))
    uvicorn.run(app, host=args.host, port=args.port, access_log=False, log_level="info")


if __name__ == "__main__":
    main()
