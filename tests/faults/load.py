"""The fault suite's client: every request it sends is recorded as ok, rejected or unknown, with the
``X-Request-Id`` it carried (the server stores it in the metadata of every event the request causes, so the
checks can find each request's effect in the log).

- ok: a 2xx answer. The write was acknowledged: its events must be in the log exactly once.
- rejected: a 4xx, a 503, or a connection that could not even be opened (nothing was sent). The write must
  have left no event.
- unknown: a timeout, a reset or a closed connection after the request was sent, a 503 that says the commit
  is in doubt (api/errors.py: the database went away while COMMIT was in flight), or another 5xx. It may
  or may not have been applied (at most once).

A 503 that says the change was committed (the answer could not be read back) counts as ok.

``MixedLoad`` drives creates, PATCHes, DELETEs and group member changes over several workspaces; it keeps a
small model of what each workspace holds so that every acknowledged write is a real change (a unique
displayName, a member that is not yet in the group), never a no-op.
"""

from __future__ import annotations

import asyncio
import itertools
import random
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from typing import Any

import httpx

from scimledger.api.errors import APPLIED, IN_DOUBT
from tests.faults.cluster import Creds

USER = "urn:ietf:params:scim:schemas:core:2.0:User"
GROUP = "urn:ietf:params:scim:schemas:core:2.0:Group"
PATCH_OP = "urn:ietf:params:scim:api:messages:2.0:PatchOp"
TIMEOUT = 10.0  # seconds: a request that takes longer is a hang (unknown)


@dataclass
class Outcome:
    request_id: str
    op: str
    workspace: str
    method: str
    url: str
    body: dict[str, Any] | None
    started: float  # seconds since the recorder started
    seconds: float = 0.0
    status: int | None = None
    result: str = "unknown"
    error: str | None = None
    retry_after: str | None = None
    answer: dict[str, Any] | None = None
    user_name: str | None = None
    resend_of: str | None = None
    together: str | None = None  # requests sent as one storm: checked together, not one by one

    def summary(self) -> dict[str, Any]:
        return {k: v for k, v in self.__dict__.items() if k not in ("body", "answer") and v is not None}


def classify(status: int) -> str:
    if 200 <= status < 300:
        return "ok"
    if 400 <= status < 500 or status == 503:
        return "rejected"
    return "unknown"


@dataclass
class Recorder:
    """Sends requests and keeps every outcome."""

    prefix: str
    timeout: float = TIMEOUT
    outcomes: list[Outcome] = field(default_factory=list)
    t0: float = field(default_factory=time.monotonic)
    _ids: itertools.count[int] = field(default_factory=itertools.count)

    def client(self) -> httpx.AsyncClient:
        return httpx.AsyncClient(timeout=self.timeout, limits=httpx.Limits(max_connections=64))

    async def send(
        self,
        client: httpx.AsyncClient,
        creds: Creds,
        op: str,
        method: str,
        url: str,
        body: dict[str, Any] | None = None,
        *,
        wait: float | None = None,
        **extra: Any,
    ) -> Outcome:
        rid = f"{self.prefix}-{next(self._ids)}"
        outcome = Outcome(rid, op, creds.id, method, url, body, time.monotonic() - self.t0, **extra)
        self.outcomes.append(outcome)
        headers = {**creds.auth, "X-Request-Id": rid}
        started = time.monotonic()
        try:
            response = await client.request(
                method, url, json=body, headers=headers, timeout=wait or self.timeout
            )
        except httpx.ConnectError as error:  # refused: nothing was sent
            outcome.result, outcome.error = "rejected", type(error).__name__
        except httpx.TransportError as error:  # timeouts, resets, closed connections
            outcome.result, outcome.error = "unknown", type(error).__name__
        else:
            outcome.status, outcome.result = response.status_code, classify(response.status_code)
            outcome.retry_after = response.headers.get("retry-after")
            if response.content and response.headers.get("content-type", "").endswith("json"):
                outcome.answer = response.json()
            if outcome.status == 503 and IN_DOUBT in response.text:  # the server cannot know either
                outcome.result = "unknown"
            if outcome.status == 503 and APPLIED in response.text:  # committed, not read back
                outcome.result = "ok"
        outcome.seconds = time.monotonic() - started
        return outcome

    async def resend(self, client: httpx.AsyncClient, creds: Creds, original: Outcome) -> Outcome:
        """The same request once more, under a request id of its own."""
        return await self.send(
            client,
            creds,
            original.op,
            original.method,
            original.url,
            original.body,
            user_name=original.user_name,
            resend_of=original.request_id,
        )

    def count(self, result: str | None = None) -> int:
        return sum(1 for o in self.outcomes if result is None or o.result == result)


def backoff(outcome: Outcome) -> float:
    """What a well-behaved client waits before its next request: ``Retry-After`` when told, a moment when
    the server could not be reached (a restart), nothing otherwise."""
    if outcome.retry_after is not None:
        return min(float(outcome.retry_after), 5.0)
    return 0.5 if outcome.error else 0.0


def user_body(user_name: str) -> dict[str, Any]:
    return {"schemas": [USER], "userName": user_name, "active": True}


def patch_body(*operations: dict[str, Any]) -> dict[str, Any]:
    return {"schemas": [PATCH_OP], "Operations": list(operations)}


@dataclass
class Holdings:
    """What the load knows one workspace holds (only acknowledged writes; a target whose write was not
    acknowledged is not used again)."""

    creds: Creds
    groups: list[str] = field(default_factory=list)
    plain: list[str] = field(default_factory=list)  # users for PATCH and DELETE
    joinable: list[str] = field(default_factory=list)  # users for group membership, never deleted
    members: list[tuple[str, str]] = field(default_factory=list)  # (group, user)


class MixedLoad:
    """Workers sending a mix of writes to ``urls`` (round robin) until ``requests`` were sent or the
    deadline passed. ``on_sent`` is called after each request (scenarios use it to strike)."""

    WEIGHTS = {"create_user": 40, "patch_user": 20, "delete_user": 10, "add_member": 20, "remove_member": 10}

    def __init__(
        self,
        recorder: Recorder,
        workspaces: list[Creds],
        urls: list[str],
        rng: random.Random,
        *,
        requests: int,
        deadline: float,
        workers: int = 12,
    ) -> None:
        self.recorder, self.urls, self.rng = recorder, urls, rng
        self.holdings = [Holdings(c) for c in workspaces]
        self.requests, self.deadline, self.workers = requests, deadline, workers
        self._sent = 0
        self._names = itertools.count()
        self.on_sent: Callable[[int], Awaitable[None]] | None = None

    async def run(self) -> None:
        async with self.recorder.client() as client:
            await asyncio.gather(*(self._worker(client, n) for n in range(self.workers)))

    async def _worker(self, client: httpx.AsyncClient, n: int) -> None:
        base = self.urls[n % len(self.urls)]
        while self._sent < self.requests and time.monotonic() < self.deadline:
            self._sent += 1
            outcome = await self.one(client, base, self.rng.choice(self.holdings))
            if self.on_sent is not None:
                await self.on_sent(self._sent)
            await asyncio.sleep(backoff(outcome))

    def _pick(self, h: Holdings) -> str:
        if len(h.groups) < 2:
            return "create_group"
        ops = [op for op, w in self.WEIGHTS.items() for _ in range(w)]
        op = self.rng.choice(ops)
        needs = {"patch_user": h.plain, "delete_user": h.plain, "add_member": h.joinable}
        if (op in needs and not needs[op]) or (op == "remove_member" and not h.members):
            return "create_user"
        return op

    async def one(self, client: httpx.AsyncClient, base: str, h: Holdings) -> Outcome:
        send, rng, op = self.recorder.send, self.rng, self._pick(h)
        if op == "create_group":
            name = f"team-{next(self._names)}"
            body = {"schemas": [GROUP], "displayName": name}
            o = await send(client, h.creds, op, "POST", f"{base}/scim/v2/Groups", body)
            if o.result == "ok" and o.answer and "id" in o.answer:
                h.groups.append(o.answer["id"])
        elif op == "create_user":
            user_name = f"user-{next(self._names)}@example.com"
            o = await send(
                client,
                h.creds,
                op,
                "POST",
                f"{base}/scim/v2/Users",
                user_body(user_name),
                user_name=user_name,
            )
            if o.result == "ok" and o.answer and "id" in o.answer:
                (h.plain if rng.random() < 0.5 else h.joinable).append(o.answer["id"])
        elif op == "patch_user":
            user = h.plain.pop(rng.randrange(len(h.plain)))
            body = patch_body({"op": "replace", "path": "displayName", "value": f"name {next(self._names)}"})
            o = await send(client, h.creds, op, "PATCH", f"{base}/scim/v2/Users/{user}", body)
            if o.result == "ok":
                h.plain.append(user)
        elif op == "delete_user":
            user = h.plain.pop(rng.randrange(len(h.plain)))
            o = await send(client, h.creds, op, "DELETE", f"{base}/scim/v2/Users/{user}")
        elif op == "add_member":
            user, group = h.joinable.pop(rng.randrange(len(h.joinable))), rng.choice(h.groups)
            body = patch_body({"op": "add", "path": "members", "value": [{"value": user}]})
            o = await send(client, h.creds, op, "PATCH", f"{base}/scim/v2/Groups/{group}", body)
            if o.result == "ok":
                h.members.append((group, user))
        else:
            group, user = h.members.pop(rng.randrange(len(h.members)))
            body = patch_body({"op": "remove", "path": f'members[value eq "{user}"]'})
            o = await send(client, h.creds, op, "PATCH", f"{base}/scim/v2/Groups/{group}", body)
            if o.result == "ok":
                h.joinable.append(user)
        return o
