"""``GET /api/v1/audit/export`` and ``scimledger audit export`` (issue 7, "Audit API").

NDJSON holds every event of the workspace (internal ones too) as ``entries.export_record`` lines, enough to
recompute the hash chain with no database; CSV holds the audit entries, flattened. Both are streamed in
batches: 20,000 events arrive in many chunks while the app holds a fraction of the export in memory; events
appended while an export streams are left for the next one. The CLI writes the same bytes, to a file or to
stdout, with a progress bar on a terminal.
"""

from __future__ import annotations

import asyncio
import csv
import io
import json
import os
import pty
import subprocess
import sys
import tracemalloc
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
import httpx
import orjson
import pytest

from scimledger import chain
from scimledger.audit import entries, export
from tests.conftest import Workspace, make_workspace
from tests.e2e.rules_helpers import admin_auth, provisioned, push_group

EXPORT = "/api/v1/audit/export"
CLI = [sys.executable, "-m", "scimledger.cli"]


@pytest.fixture
async def busy(client: httpx.AsyncClient, workspace: Workspace) -> Workspace:
    """A workspace with members, a team and a second token: internal events and secrets included."""
    member = await provisioned(client, workspace, "ada@example.com", roles=["admin"])
    await provisioned(client, workspace, "bob@example.com")
    assert (await push_group(client, workspace, "Eng", member)).status_code == 201
    issued = await client.post("/api/v1/tokens", json={"name": "Okta"}, headers=admin_auth(workspace))
    assert issued.status_code == 201
    return workspace


async def exported(client: httpx.AsyncClient, ws: Workspace, **params: str) -> httpx.Response:
    response = await client.get(EXPORT, params=params, headers=admin_auth(ws))
    assert response.status_code == 200, response.text
    return response


def ndjson_lines(body: bytes) -> list[dict[str, Any]]:
    assert body.endswith(b"\n")
    return [orjson.loads(line) for line in body.splitlines()]


def csv_rows(body: bytes) -> list[dict[str, str]]:
    return list(csv.DictReader(io.StringIO(body.decode(), newline="")))


async def log_rows(app: Any, ws: Workspace) -> list[asyncpg.Record]:
    return list(
        await app.state.pool.fetch(
            f"SELECT {entries.COLUMNS} FROM events WHERE workspace_id = $1 ORDER BY position", ws.id
        )
    )


# --- NDJSON -------------------------------------------------------------------------------------------------
async def test_ndjson_holds_every_event_as_its_export_record(
    client: httpx.AsyncClient, app: Any, busy: Workspace
) -> None:
    response = await exported(client, busy)
    rows = await log_rows(app, busy)
    assert ndjson_lines(response.content) == [entries.export_record(row) for row in rows]
    assert "UniquenessClaimed" in {r["event_type"] for r in rows}


async def test_ndjson_is_the_default_and_is_served_as_an_attachment(
    client: httpx.AsyncClient, busy: Workspace
) -> None:
    response = await exported(client, busy)
    assert response.headers["content-type"] == "application/x-ndjson"
    expected = f'attachment; filename="audit-{busy.id}.ndjson"'
    assert response.headers["content-disposition"] == expected


async def test_an_ndjson_export_is_enough_to_recompute_the_hash_chain(
    client: httpx.AsyncClient, busy: Workspace
) -> None:
    previous = chain.GENESIS.hex()
    for record in ndjson_lines((await exported(client, busy)).content):
        assert record["prev_hash"] == previous
        recomputed = chain.event_hash(
            bytes.fromhex(record["prev_hash"]),
            record["position"],
            UUID(record["workspace_id"]),
            UUID(record["stream_id"]),
            record["stream_version"],
            record["type"],
            datetime.fromisoformat(record["recorded_at"]),
            record["state"].encode(),
            record["metadata_text"],
        )
        assert recomputed.hex() == record["hash"]
        previous = record["hash"]


async def test_no_secret_is_exported_and_secret_hashes_only_inside_the_hashed_bytes(
    client: httpx.AsyncClient, app: Any, busy: Workspace
) -> None:
    """The entries redact ``secret_hash``; an NDJSON record also carries ``state``, the exact bytes the chain
    hashes (the offline verifier needs them), and those hold the hashes: nowhere else do they appear."""
    hashes = [
        r["h"]
        for r in await app.state.pool.fetch(
            """SELECT encode(secret_hash, 'hex') AS h FROM tokens WHERE workspace_id = $1
               UNION ALL SELECT encode(secret_hash, 'hex') FROM admin_keys WHERE workspace_id = $1""",
            busy.id,
        )
    ]
    assert len(hashes) == 3
    records = ndjson_lines((await exported(client, busy)).content)
    shown = orjson.dumps([{k: v for k, v in r.items() if k != "state"} for r in records]).decode()
    body = (await exported(client, busy, format="csv")).text + shown
    assert not [s for s in [busy.token, busy.admin_key, *hashes] if s in body]
    assert {h for h in hashes for r in records if h in r["state"]} == set(hashes)


# --- CSV ----------------------------------------------------------------------------------------------------
async def test_csv_has_a_header_and_one_flattened_row_per_event(
    client: httpx.AsyncClient, app: Any, busy: Workspace
) -> None:
    response = await exported(client, busy, format="csv")
    assert response.headers["content-type"] == "text/csv; charset=utf-8"
    assert response.headers["content-disposition"] == f'attachment; filename="audit-{busy.id}.csv"'
    assert response.content.startswith(b",".join(c.encode() for c in export.CSV_COLUMNS) + b"\r\n")
    found = csv_rows(response.content)
    shown = [entries.entry(row) for row in await log_rows(app, busy)]
    assert len(found) == len(shown)
    for row, entry in zip(found, shown, strict=True):
        actor = entry["actor"]
        assert (row["position"], row["type"], row["hash"]) == (
            str(entry["position"]),
            entry["type"],
            entry["hash"],
        )
        assert (row["actor_kind"], row["actor_id"], row["actor_name"]) == (
            actor["kind"],
            actor["id"],
            actor["name"],
        )
        assert (row["source"], row["request_id"] or None) == (entry["source"], entry["request_id"])
        assert json.loads(row["data"]) == entry["data"]


async def test_csv_cells_a_spreadsheet_would_run_as_formulas_are_quoted(
    client: httpx.AsyncClient, busy: Workspace
) -> None:
    name = '=HYPERLINK("https://evil.test")'
    issued = await client.post("/api/v1/tokens", json={"name": name}, headers=admin_auth(busy))
    headers = {"Authorization": f"Bearer {issued.json()['token']}", "User-Agent": "@SUM(1+1)"}
    created = await client.post("/scim/v2/Users", json={"userName": "eve@example.com"}, headers=headers)
    assert created.status_code == 201, created.text
    [row] = [
        r
        for r in csv_rows((await exported(client, busy, format="csv")).content)
        if r["type"] == "MemberProvisioned" and r["actor_name"] != "IdP token"
    ]
    assert (row["actor_name"], row["user_agent"]) == ("'" + name, "'@SUM(1+1)")
    [record] = [
        r
        for r in ndjson_lines((await exported(client, busy)).content)
        if r["actor"]["name"] == name and r["type"] == "MemberProvisioned"
    ]
    assert record["user_agent"] == "@SUM(1+1)"  # NDJSON is exact


# --- ranges, refusals, isolation ----------------------------------------------------------------------------
@pytest.mark.parametrize("fmt", ["ndjson", "csv"])
async def test_since_is_inclusive_and_until_exclusive(
    client: httpx.AsyncClient, app: Any, busy: Workspace, fmt: str
) -> None:
    rows = await log_rows(app, busy)
    times = sorted({r["recorded_at"] for r in rows})
    since, until = entries.timestamp(times[1]), entries.timestamp(times[-1])
    response = await exported(client, busy, format=fmt, since=since, until=until)
    found = ndjson_lines(response.content) if fmt == "ndjson" else csv_rows(response.content)
    wanted = [r["position"] for r in rows if times[1] <= r["recorded_at"] < times[-1]]
    assert wanted and [int(r["position"]) for r in found] == wanted


@pytest.mark.parametrize(
    "params",
    [
        {"format": "xml"},
        {"since": "last week"},
        {"until": "2025-02-30T00:00:00Z"},
        {"since": "2025-03-02T00:00:00Z", "until": "2025-03-01T00:00:00Z"},
        {"type": "SeatAssigned"},
    ],
)
async def test_a_value_that_cannot_be_used_is_400(
    client: httpx.AsyncClient, workspace: Workspace, params: dict[str, str]
) -> None:
    response = await client.get(EXPORT, params=params, headers=admin_auth(workspace))
    assert response.status_code == 400, response.text
    assert response.json()["error"]["code"] == "invalid_command"


async def test_another_workspaces_export_holds_none_of_this_workspaces_events(
    client: httpx.AsyncClient, app: Any, busy: Workspace
) -> None:
    other = await make_workspace(app.state.store, name="Other")
    theirs = ndjson_lines((await exported(client, other)).content)
    assert theirs and {r["workspace_id"] for r in theirs} == {str(other.id)}
    ours = {r["position"] for r in ndjson_lines((await exported(client, busy)).content)}
    assert not {r["position"] for r in theirs} & ours


# --- streaming ----------------------------------------------------------------------------------------------
BULK_METADATA = {"actor": {"kind": "system", "id": "bulk", "name": "bulk"}, "source": "system"}


async def append_bulk(pool: asyncpg.Pool, ws: Workspace, count: int) -> None:
    """``count`` events in one append (the real append function: positions and chain as usual)."""
    await pool.execute(
        """SELECT scimledger_append(
                  $1, array_agg(gen_random_uuid()), array_agg(1::bigint), array_agg('SeatAdded'::text),
                  array_agg(convert_to(format('{"count": %s, "note": "%s"}', g, repeat('n', 300)), 'UTF8')),
                  array_agg(format('{"count": %s}', g)::jsonb), array_agg($2::jsonb))
             FROM generate_series(1, $3::int) AS g""",
        ws.id,
        BULK_METADATA,
        count,
    )


@dataclass
class Streamed:
    """What an ASGI server would have sent, body chunk by body chunk (kept as sizes, not bytes)."""

    status: int = 0
    chunks: list[int] = field(default_factory=list)
    lines: int = 0
    positions: list[int] = field(default_factory=list)


async def stream(
    app: Any, ws: Workspace, query: bytes, on_chunk: Any = None, *, positions: bool = False
) -> Streamed:
    """Drive the ASGI app directly, as a server would, discarding each chunk once counted (and with
    ``positions``, the NDJSON positions it holds noted)."""
    out = Streamed()
    done = asyncio.Event()
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.4"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "https",
        "path": EXPORT,
        "raw_path": EXPORT.encode(),
        "query_string": query,
        "root_path": "",
        "headers": [(b"host", b"scim.example.test"), (b"authorization", f"Bearer {ws.admin_key}".encode())],
        "client": ("127.0.0.1", 50000),
        "server": ("scim.example.test", 443),
    }
    requested = False

    async def receive() -> dict[str, Any]:
        nonlocal requested
        if not requested:
            requested = True
            return {"type": "http.request", "body": b"", "more_body": False}
        await done.wait()
        return {"type": "http.disconnect"}

    async def send(message: dict[str, Any]) -> None:
        if message["type"] == "http.response.start":
            out.status = message["status"]
        elif message["type"] == "http.response.body" and message.get("body"):
            body: bytes = message["body"]
            out.chunks.append(len(body))
            out.lines += body.count(b"\n")
            if positions:
                out.positions += [orjson.loads(line)["position"] for line in body.splitlines()]
            if on_chunk is not None:
                await on_chunk(len(out.chunks))

    try:
        await app(scope, receive, send)
    finally:
        done.set()
    return out


async def test_20000_events_are_streamed_in_batches_with_bounded_memory(
    app: Any, workspace: Workspace
) -> None:
    await append_bulk(app.state.pool, workspace, 20_000)
    expected = await app.state.pool.fetchval(
        "SELECT count(*) FROM events WHERE workspace_id = $1", workspace.id
    )
    tracemalloc.start()
    try:
        tracemalloc.reset_peak()
        before, _ = tracemalloc.get_traced_memory()
        streamed = await stream(app, workspace, b"format=ndjson")
        _, peak = tracemalloc.get_traced_memory()
    finally:
        tracemalloc.stop()
    total = sum(streamed.chunks)
    assert streamed.status == 200
    assert streamed.lines == expected > 20_000
    assert len(streamed.chunks) >= expected // export.BATCH  # one chunk per batch, not one body
    assert max(streamed.chunks) < total / 10
    assert peak - before < total / 3, (peak - before, total)  # a few batches in memory (~1/5), not all


async def test_events_appended_while_an_export_streams_are_left_for_the_next_one(
    app: Any, workspace: Workspace
) -> None:
    await append_bulk(app.state.pool, workspace, 3 * export.BATCH)
    before = await app.state.pool.fetchval("SELECT max(position) FROM events")

    async def append_more(chunk: int) -> None:
        if chunk == 1:
            await append_bulk(app.state.pool, workspace, 10)

    streamed = await stream(app, workspace, b"", on_chunk=append_more, positions=True)
    assert await app.state.pool.fetchval("SELECT max(position) FROM events") == before + 10
    assert streamed.positions == list(range(1, before + 1))  # the only workspace: every position, in order


# --- the CLI: a real ``scimledger`` process -----------------------------------------------------------------
def files_in(directory: Path) -> list[str]:
    return sorted(p.name for p in directory.iterdir())


def run_cli(database_url: str, *args: str, **kwargs: Any) -> subprocess.CompletedProcess[bytes]:
    env = {**os.environ, "DATABASE_URL": database_url}
    return subprocess.run(
        [*CLI, "audit", "export", *args], env=env, capture_output=True, timeout=120, **kwargs
    )


async def test_cli_export_to_a_file_writes_the_bytes_of_the_http_export(
    client: httpx.AsyncClient, busy: Workspace, database_url: str, tmp_path: Path
) -> None:
    target = tmp_path / "audit.ndjson"
    done = await asyncio.to_thread(
        run_cli, database_url, "--workspace", str(busy.id), "--output", str(target)
    )
    assert done.returncode == 0, done.stderr
    body = (await exported(client, busy)).content
    assert target.read_bytes() == body
    assert json.loads(done.stdout) == {
        "workspace_id": str(busy.id),
        "format": "ndjson",
        "events": body.count(b"\n"),
        "output": str(target),
    }
    assert done.stderr == b""  # no progress bar when stderr is not a terminal
    assert files_in(tmp_path) == [target.name]


async def test_cli_export_as_csv_in_a_range_to_stdout(
    client: httpx.AsyncClient, app: Any, busy: Workspace, database_url: str
) -> None:
    times = sorted({r["recorded_at"] for r in await log_rows(app, busy)})
    since, until = entries.timestamp(times[1]), entries.timestamp(times[-1])
    args = ("--workspace", str(busy.id), "--format", "csv", "--since", since, "--until", until)
    done = await asyncio.to_thread(run_cli, database_url, *args)
    assert done.returncode == 0, done.stderr
    assert done.stdout == (await exported(client, busy, format="csv", since=since, until=until)).content


async def test_cli_export_draws_a_progress_bar_on_a_terminal(
    busy: Workspace, database_url: str, tmp_path: Path
) -> None:
    leader, follower = pty.openpty()
    try:
        args = ("--workspace", str(busy.id), "--output", str(tmp_path / "a.ndjson"))
        env = {**os.environ, "DATABASE_URL": database_url}
        done = await asyncio.to_thread(
            subprocess.run,
            [*CLI, "audit", "export", *args],
            env=env,
            stdout=subprocess.PIPE,
            stderr=follower,
            timeout=120,
        )
        assert done.returncode == 0
        drawn = os.read(leader, 65536).decode()
    finally:
        os.close(leader)
        os.close(follower)
    events = json.loads(done.stdout)["events"]
    assert f"export [{'#' * 30}] {events}/{events} (100%)" in drawn


@pytest.mark.parametrize(
    ("args", "message"),
    [
        (("--workspace", "acme"), "error: 'acme' is not a workspace id"),
        (
            ("--workspace", "00000000-0000-0000-0000-000000000000"),
            "error: workspace 00000000-0000-0000-0000-000000000000 not found",
        ),
        (("--since", "yesterday"), "error: --since must be an RFC 3339 date-time"),
        (("--until", "2025-02-30T00:00:00Z"), "error: --until is not a valid date-time"),
    ],
)
async def test_cli_export_refuses_a_bad_workspace_or_time_with_exit_2_and_one_line(
    busy: Workspace, database_url: str, tmp_path: Path, args: tuple[str, ...], message: str
) -> None:
    full = args if args[0] == "--workspace" else ("--workspace", str(busy.id), *args)
    done = await asyncio.to_thread(run_cli, database_url, *full, "--output", str(tmp_path / "x"))
    assert done.returncode == 2
    lines = done.stderr.decode().splitlines()
    assert len(lines) == 1 and lines[0].startswith(message), lines
    assert files_in(tmp_path) == []
