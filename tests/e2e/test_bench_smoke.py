"""The benchmark's requests are right (bench/pools.py, seeding.py, peer_app.py): every workload of
``make bench``, built from workspaces seeded the way the benchmark seeds them, is answered 2xx (with the
body the look-ups expect) by a live scimledger server, and the peer's by ``scim2-server``. The requests are
replayed here as ``bench/replay.lua`` sends them ("{n}" counters, a group push's follow-up PATCH), one at
a time: wrk itself is not needed (CI has none)."""

from __future__ import annotations

import json
import os
import re
import sys
from pathlib import Path
from typing import Any

import httpx
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402 - bench/ is not a package: its modules import each other by name
import pools  # noqa: E402
import seeding  # noqa: E402
import workloads  # noqa: E402

from scimledger.store.event_store import EventStore  # noqa: E402
from tests.e2e.live_server import live_server  # noqa: E402


class Replayer:
    """``replay.lua``'s rules in Python: "{n}" becomes a growing counter; a 201 whose displayName is a
    line's key sends that line's follow-up with "{id}" replaced by the response's id."""

    def __init__(self, client: httpx.Client, first_n: int) -> None:
        self.client, self.n = client, first_n
        self.statuses: list[tuple[str, str, int]] = []

    def send(self, method: str, path: str, token: str, body: str, expect: str = "") -> httpx.Response:
        headers = {"Accept": "application/scim+json"}
        if token:
            headers["Authorization"] = f"Bearer {token}"
        if body:
            headers["Content-Type"] = "application/scim+json"
        response = self.client.request(method, path, content=body or None, headers=headers)
        ok = 200 <= response.status_code < 300 and expect in response.text
        self.statuses.append((method, path, response.status_code if ok else -response.status_code))
        return response

    def replay(self, lines: list[pools.Line], expect: str = "") -> None:
        for line in lines:
            method, path, token, body = line[:4]
            if "{n}" in path or "{n}" in body:
                path, body = path.replace("{n}", str(self.n)), body.replace("{n}", str(self.n))
                self.n += 1
            response = self.send(method, path, token, body, expect)
            if len(line) > 4 and response.status_code == 201:
                name = re.search(r'"displayName"\s*:\s*"([^"]*)"', response.text)
                found = re.search(r'"id"\s*:\s*"([^"]*)"', response.text)
                assert name and found and name.group(1) == line[4], response.text
                self.send(line[5], line[6].replace("{id}", found.group(1)), token, line[7])

    def failures(self) -> list[tuple[str, str, int]]:
        return [s for s in self.statuses if s[2] < 0]


@pytest.fixture
async def seeded(store: EventStore) -> dict[str, Any]:
    """As ``bench/main.py`` seeds, smaller: a look-up workspace with empty groups, two mix workspaces
    with groups, a fresh one and two spread ones for the creates."""
    big = await seeding.fill(
        store, await seeding.make_workspace(store, "look-ups", "big.bench.test"), 40, 4, 0
    )
    mix = [
        await seeding.fill(
            store, await seeding.make_workspace(store, f"mix {i}", f"mix{i}.bench.test"), 40, 2, 3
        )
        for i in (1, 2)
    ]
    one = await seeding.make_workspace(store, "one", "one.bench.test")
    spread = [await seeding.make_workspace(store, f"spread {i}", f"spread{i}.bench.test") for i in (1, 2)]
    return {"big": big, "mix": mix, "one": one, "spread": spread}


def test_every_workload_is_answered_2xx_by_a_live_scimledger(
    database_url: str, seeded: dict[str, Any]
) -> None:
    api, big = workloads.SCIM, seeded["big"]
    c, mix = pools.Cursor(big), [pools.Cursor(ws) for ws in seeded["mix"]]
    with live_server(database_url) as base, httpx.Client(base_url=base, timeout=30) as client:
        r = Replayer(client, first_n=1)
        r.replay(pools.lookups(api, big.token, big.domain, big.users, 10), expect=workloads.OURS_ONE_RESULT)
        r.replay(pools.creates(api, [(seeded["one"].token, seeded["one"].domain)]) * 3)
        r.replay(pools.creates(api, [(ws.token, ws.domain) for ws in seeded["spread"]]) * 2)
        r.replay(pools.deactivations(api, c, 5))
        r.replay(pools.group_adds(api, c, 5))
        r.replay(pools.mix(api, mix, 4, "entra"))
        r.replay(pools.mix(api, mix, 4, "okta"))
    assert r.failures() == []
    assert len(r.statuses) == 10 + 3 + 4 + 5 + 5 + 4 * 5 + 4 * 4


def test_the_peer_workloads_are_answered_2xx_by_scim2_server(tmp_path: Path) -> None:
    """As ``workloads.peer`` runs it: ``peer_app.py`` on uvicorn, seeded in-process before it serves."""
    out, domain = tmp_path / "seeded.json", "peer.bench.test"
    args = [sys.executable, str(BENCH / "peer_app.py"), "--token", "peer-token", "--seed-users", "30"]
    args += ["--seed-groups", "3", "--domain", domain, "--seed-out", str(out)]
    with harness.server("peer", args, dict(os.environ), 1, tmp_path) as (base, _):
        ids = json.loads(out.read_text())
        ws = pools.Workspace("peer", "peer-token", "", domain, 30, ids["users"], ids["groups"], 0)
        api = workloads.PEER_API
        client = httpx.Client(base_url=base, timeout=30)
        r = Replayer(client, first_n=31)
        r.replay(pools.creates(api, [("peer-token", ws.domain)]) * 3)
        r.replay(pools.lookups(api, "peer-token", ws.domain, 30, 10), expect=workloads.PEER_ONE_RESULT)
        r.replay(pools.group_adds(api, pools.Cursor(ws), 5))
        client.close()
    assert r.failures() == []
    assert len(r.statuses) == 3 + 10 + 5
