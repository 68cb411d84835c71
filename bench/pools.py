"""Request pools: the lines ``replay.lua`` sends, one request each (see its header for the format).

Each workload is built here from what was seeded (``seeding.Workspace``) and a ``Cursor`` per workspace that
hands out members, groups and new userNames no earlier run used, so that every write of every run is a
real change (a deactivation of an active member, an add of a member not yet in the group, a new user).
``api`` is the SCIM root: ``/scim/v2`` for scimledger, ``/v2`` for the peer.
"""

from __future__ import annotations

import dataclasses
import random
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any
from urllib.parse import quote

import orjson

from scimledger.scim.patch import PATCH_OP_SCHEMA
from scimledger.scim.schemas import GROUP_URN, USER_URN

USER_SENTINEL = 987654321
Line = tuple[str, ...]  # METHOD, PATH, TOKEN, BODY[, KEY, METHOD, PATH, BODY]
OKTA_DEACTIVATE = {
    "schemas": [PATCH_OP_SCHEMA],
    "Operations": [{"op": "replace", "value": {"active": False}}],
}


def user_body(n: int, domain: str) -> dict[str, Any]:
    """The SCIM User every create of the benchmark sends, for ``user-<n>@<domain>``."""
    name = f"user-{n}@{domain}"
    return {
        "schemas": [USER_URN],
        "userName": name,
        "name": {"givenName": "Bench", "familyName": f"User {n}"},
        "displayName": f"Bench User {n}",
        "emails": [{"value": name, "type": "work", "primary": True}],
        "title": "Load test",
        "preferredLanguage": "en-US",
        "locale": "en-US",
        "active": True,
    }


def group_body(name: str, member_ids: Sequence[str]) -> dict[str, Any]:
    return {"schemas": [GROUP_URN], "displayName": name, "members": [{"value": m} for m in member_ids]}


def add_members_body(member_ids: Sequence[str]) -> dict[str, Any]:
    value = [{"value": m} for m in member_ids]
    return {"schemas": [PATCH_OP_SCHEMA], "Operations": [{"op": "add", "path": "members", "value": value}]}


@dataclasses.dataclass
class Workspace:
    """A workspace made for the benchmark, with its SCIM token and what was seeded into it."""

    id: str
    token: str
    token_id: str
    domain: str
    users: int = 0  # user-1 .. user-<users>@<domain> exist
    user_ids: list[str] = dataclasses.field(default_factory=list)  # member ids, user-1 first
    groups: list[str] = dataclasses.field(default_factory=list)
    group_members: int = 0  # each group holds user-1 .. user-<group_members>


def dumps(body: object) -> str:
    text = orjson.dumps(body).decode()
    if "\t" in text or "\n" in text:
        raise ValueError("a pool body must hold no tab or newline")
    return text


def write(path: Path, lines: Iterable[Line]) -> int:
    """Write a pool file; how many lines."""
    count = 0
    with path.open("w") as out:
        for line in lines:
            out.write("\t".join(line) + "\n")
            count += 1
    if not count:
        raise ValueError(f"empty pool {path.name}")
    return count


@dataclasses.dataclass
class Cursor:
    """What of a workspace the runs have used so far."""

    ws: Workspace
    next_new: int = 0  # the next user number no one created (0: users + 1)
    deactivated: int = 0  # members taken from the end of user_ids
    added: int = 0  # members taken after the groups' first members, each added to one group
    patched: int = 0
    put: int = 0
    page: int = 0
    pushed: int = 0

    def new_user(self) -> int:
        self.next_new = self.next_new or self.ws.users + 1
        self.next_new += 1
        return self.next_new - 1

    def to_deactivate(self) -> str:
        self.deactivated += 1
        return self.ws.user_ids[-self.deactivated]

    def left_to_add(self) -> int:
        return len(self.ws.user_ids) - self.deactivated - self.ws.group_members - self.added

    def to_add(self) -> tuple[str, str]:
        """A member not yet in the group it is added to (each member goes to one group)."""
        if self.left_to_add() <= 0:
            raise ValueError(f"workspace {self.ws.domain}: no member left to add to a group")
        i = self.ws.group_members + self.added
        self.added += 1
        return self.ws.groups[i % len(self.ws.groups)], self.ws.user_ids[i]

    def to_patch(self) -> tuple[int, str]:
        k = self.patched % len(self.ws.user_ids)
        self.patched += 1
        return k + 1, self.ws.user_ids[k]

    def to_put(self) -> tuple[int, str]:
        k = self.put % len(self.ws.user_ids)
        self.put += 1
        return k + 1, self.ws.user_ids[k]


def user_template(domain: str) -> str:
    """A create body with ``{n}`` for the user number (``replay.lua`` fills it in)."""
    return dumps(user_body(USER_SENTINEL, domain)).replace(str(USER_SENTINEL), "{n}")


def creates(api: str, targets: Sequence[tuple[str, str]]) -> list[Line]:
    """POST {api}/Users of a new user per request, round robin over ``targets`` (token, domain); to run with
    ``cycle``. The ceiling gets the same bodies at ``api`` = "/ingest" (no /Users)."""
    path = api if api == "/ingest" else f"{api}/Users"
    return [("POST", path, token, user_template(domain)) for token, domain in targets]


def user_filter(api: str, n: int, domain: str) -> str:
    return f"{api}/Users?filter=" + quote(f'userName eq "user-{n}@{domain}"')


def lookups(api: str, token: str, domain: str, users: int, count: int, seed: int = 1) -> list[Line]:
    """GET {api}/Users?filter=userName eq "user-<random n>@domain" (the same sequence for a seed); the
    read ceiling gets ``api`` = "/lookup" (GET /lookup?userName=...)."""
    rng = random.Random(seed)
    numbers = [rng.randint(1, users) for _ in range(count)]
    if api == "/lookup":
        return [("GET", f"/lookup?userName={quote(f'user-{n}@{domain}')}", "", "") for n in numbers]
    return [("GET", user_filter(api, n, domain), token, "") for n in numbers]


def deactivations(api: str, cursor: Cursor, count: int) -> list[Line]:
    """Okta's deactivation: PATCH {api}/Users/{id} replace {"active": false}, each of an active member."""
    body = dumps(OKTA_DEACTIVATE)
    return [("PATCH", f"{api}/Users/{cursor.to_deactivate()}", cursor.ws.token, body) for _ in range(count)]


def group_adds(api: str, cursor: Cursor, count: int) -> list[Line]:
    """PATCH {api}/Groups/{id} add one member, a member not yet in that group, over the workspace's
    groups in turn; fewer than ``count`` when the workspace has no more members to add."""
    lines: list[Line] = []
    for _ in range(min(count, cursor.left_to_add())):
        group, member = cursor.to_add()
        lines.append(("PATCH", f"{api}/Groups/{group}", cursor.ws.token, dumps(add_members_body([member]))))
    return lines


def entra_unit(api: str, c: Cursor) -> list[Line]:
    """What Microsoft Entra sends for a new user, a changed user and a group membership: it looks a user
    up by userName before each create or update (RFC 7644 §3.4.2.2), PATCHes with capitalised ops
    ("Replace"), and adds one member per group PATCH."""
    ws, token = c.ws, c.ws.token
    n = c.new_user()
    k, member = c.to_patch()
    group, added = c.to_add()
    change = {"op": "Replace", "path": "title", "value": f"Title {c.patched}"}
    patch = dumps({"schemas": [PATCH_OP_SCHEMA], "Operations": [change]})
    return [
        ("GET", user_filter(api, n, ws.domain), token, ""),
        ("POST", f"{api}/Users", token, dumps(user_body(n, ws.domain))),
        ("GET", user_filter(api, k, ws.domain), token, ""),
        ("PATCH", f"{api}/Users/{member}", token, patch),
        ("PATCH", f"{api}/Groups/{group}", token, dumps(add_members_body([added]))),
    ]


def okta_unit(api: str, c: Cursor, push_members: int = 2) -> list[Line]:
    """What Okta sends: a page of its import (GET /Users?startIndex=..&count=100), a profile update (PUT of
    the whole user), and a group push (POST /Groups with no members, then PATCH adding them, sent by
    ``replay.lua`` once the POST answered the group's id)."""
    ws, token = c.ws, c.ws.token
    start = (c.page * 100) % max(ws.users, 1) + 1
    c.page += 1
    k, member = c.to_put()
    user = {**user_body(k, ws.domain), "id": member, "title": f"Title {c.put}"}
    c.pushed += 1
    name = f"okta push {c.pushed} {ws.domain}"  # replay.lua finds the follow-up by name: unique in a pool
    members = [c.to_add()[1] for _ in range(push_members)]
    add = dumps(add_members_body(members))
    push = dumps({"schemas": [GROUP_URN], "displayName": name, "members": []})
    return [
        ("GET", f"{api}/Users?startIndex={start}&count=100", token, ""),
        ("PUT", f"{api}/Users/{member}", token, dumps(user)),
        ("POST", f"{api}/Groups", token, push, name, "PATCH", f"{api}/Groups/{{id}}", add),
    ]


def mix(api: str, cursors: Sequence[Cursor], units: int, shape: str) -> list[Line]:
    """``units`` Entra- or Okta-shaped units, round robin over the workspaces."""
    unit = entra_unit if shape == "entra" else okta_unit
    lines: list[Line] = []
    for i in range(units):
        lines.extend(unit(api, cursors[i % len(cursors)]))
    return lines
