"""``GET /healthz`` (the process answers) and ``GET /readyz`` (it can serve): no token, one short query.

Readiness (README, "Operating it") checks, in one statement on one pooled connection, within
READY_TIMEOUT_SECONDS:

- ``database``: PostgreSQL answers.
- ``schema``: every table, column, index, sequence and function that ``schema.sql`` creates exists (read
  from the file itself, so a migration that was not run is caught whatever it added). The server may be
  a least-privilege role that cannot migrate: then ``scimledger migrate`` has to run as the owner first.
- ``outbox``: fewer than ``SCIMLEDGER_READY_MAX_OUTBOX_LAG`` notifications wait to be sent (default 1000)
  and the oldest has waited less than ``SCIMLEDGER_READY_MAX_OUTBOX_AGE`` seconds (default 600); ``0``
  turns either limit off. Counting starts from a floor kept per process: FLOOR_SLACK positions below the
  oldest unsent row the last probe saw (the slack covers rows of transactions that committed out of
  position order: the log's order is (tx, position)), so a probe walks the recent rows, not the history.

503 names the failed checks: ``{"status": "unready", "failed": [...], "checks": {...}}``.
"""

from __future__ import annotations

import asyncio
import os
import re
from dataclasses import dataclass, field
from functools import cache
from typing import Any

import asyncpg
from starlette.requests import Request
from starlette.responses import Response
from starlette.routing import Route

from scimledger import pg
from scimledger.api.responses import JSONResponse
from scimledger.config import ConfigError

READY_TIMEOUT_SECONDS = 2.0
UNCOUNTED_LIMIT = 10_000  # how far unsent rows are counted (for /metrics) when the lag limit is off
NO_STORE = {"Cache-Control": "no-store"}
NOT_CHECKED = "not checked"
FLOOR_SLACK = 1000


@dataclass(frozen=True)
class Limits:
    """``SCIMLEDGER_READY_MAX_OUTBOX_LAG`` (rows) and ``SCIMLEDGER_READY_MAX_OUTBOX_AGE`` (seconds)."""

    max_unsent: int = 1000
    max_age_seconds: float = 600.0

    @classmethod
    def from_env(cls) -> Limits:
        return cls(
            _number("SCIMLEDGER_READY_MAX_OUTBOX_LAG", cls.max_unsent, int),
            _number("SCIMLEDGER_READY_MAX_OUTBOX_AGE", cls.max_age_seconds, float),
        )


def _number(name: str, default: Any, kind: type[Any]) -> Any:
    raw = os.environ.get(name, "").strip()
    if not raw:
        return default
    try:
        value = kind(raw)
    except ValueError:
        value = -1
    if not value >= 0:  # negative, NaN, or not a number
        raise ConfigError(name, f"{raw!r} is not a number >= 0 (0 turns the limit off)")
    return value


# --- what schema.sql creates --------------------------------------------------------------------------------
_NOT_COLUMNS = {"PRIMARY", "CONSTRAINT", "UNIQUE", "CHECK", "FOREIGN", "EXCLUDE"}


@dataclass(frozen=True)
class Expected:
    relations: tuple[str, ...]  # tables, indexes, sequences
    columns: tuple[tuple[str, str], ...]
    functions: tuple[str, ...]


def parse_schema(sql: str) -> Expected:
    """Every object ``sql`` creates with ``IF NOT EXISTS`` / ``OR REPLACE``, and every column."""
    text = re.sub(r"--[^\n]*", "", sql)
    relations: list[str] = []
    columns: list[tuple[str, str]] = []
    for table, body in re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)\s*\((.*?)\n\);", text, re.S | re.I):
        relations.append(table)
        for line in body.splitlines():
            found = re.match(r"\s*([A-Za-z_]\w*)\s+\S", line)
            if found and found.group(1).upper() not in _NOT_COLUMNS:
                columns.append((table, found.group(1)))
    columns += re.findall(r"ALTER TABLE (\w+) ADD COLUMN IF NOT EXISTS (\w+)", text, re.I)
    relations += re.findall(r"CREATE (?:UNIQUE )?INDEX IF NOT EXISTS (\w+)", text, re.I)
    relations += re.findall(r"CREATE SEQUENCE IF NOT EXISTS (\w+)", text, re.I)
    functions = re.findall(r"CREATE (?:OR REPLACE )?FUNCTION (\w+)", text, re.I)
    return Expected(
        tuple(dict.fromkeys(relations)), tuple(dict.fromkeys(columns)), tuple(dict.fromkeys(functions))
    )


@cache
def expected() -> Expected:
    return parse_schema(pg.schema_sql())


MISSING = """
    ARRAY(SELECT r FROM unnest($1::text[]) AS r WHERE to_regclass(r) IS NULL)
    || ARRAY(SELECT w.t || '.' || w.c FROM unnest($2::text[], $3::text[]) AS w(t, c)
             WHERE NOT EXISTS (SELECT 1 FROM pg_attribute a
                                WHERE a.attrelid = to_regclass(w.t) AND a.attname = w.c
                                  AND NOT a.attisdropped))
    || ARRAY(SELECT f || '()' FROM unnest($4::text[]) AS f
             WHERE NOT EXISTS (SELECT 1 FROM pg_proc p
                                WHERE p.proname = f AND pg_function_is_visible(p.oid)))"""
READY = f"""
    WITH unsent AS (
        SELECT o.position, o.created_at FROM outbox o
         WHERE o.position > $5
           AND NOT EXISTS (SELECT 1 FROM outbox_delivery d WHERE d.position = o.position AND d.kind = o.kind)
         ORDER BY o.position LIMIT $6)
    SELECT {MISSING} AS missing,
           (SELECT count(*) FROM unsent) AS unsent,
           (SELECT min(position) FROM unsent) AS first_unsent,
           (SELECT extract(epoch FROM now() - min(created_at))::float8 FROM unsent) AS oldest_seconds"""
SCHEMA_ONLY = f"SELECT {MISSING} AS missing"


# --- the probe ----------------------------------------------------------------------------------------------
@dataclass
class Probe:
    """One readiness probe's findings; ``checks`` maps each check to "ok" or why it failed."""

    checks: dict[str, str] = field(default_factory=dict)
    unsent: int = 0
    oldest_seconds: float = 0.0

    @property
    def failed(self) -> list[str]:
        return [name for name, result in self.checks.items() if result not in ("ok", NOT_CHECKED)]

    @property
    def database_up(self) -> bool:
        return self.checks.get("database") == "ok"


@dataclass
class Readiness:
    """Per-app state: the limits, and the position the outbox probe counts from (module docstring)."""

    limits: Limits = field(default_factory=Limits.from_env)
    floor: int = 0
    floor_slack: int = FLOOR_SLACK


def readiness(app: Any) -> Readiness:
    state = getattr(app.state, "readiness", None)
    if state is None:
        state = app.state.readiness = Readiness()
    assert isinstance(state, Readiness)
    return state


async def _query(pool: asyncpg.Pool, state: Readiness, probe: Probe) -> None:
    want = expected()
    args = (
        list(want.relations),
        [t for t, _ in want.columns],
        [c for _, c in want.columns],
        list(want.functions),
    )
    counted = (state.limits.max_unsent or UNCOUNTED_LIMIT) + 1
    async with pool.acquire() as conn:
        try:
            row = await conn.fetchrow(READY, *args, state.floor, counted)
        except (asyncpg.UndefinedTableError, asyncpg.UndefinedColumnError):
            row = None  # the outbox query needs what is missing: name it
            missing = await conn.fetchval(SCHEMA_ONLY, *args)
        else:
            missing = row["missing"]
    probe.checks["database"] = "ok"
    probe.checks["schema"] = f"missing (run `scimledger migrate`): {', '.join(missing)}" if missing else "ok"
    if row is None:
        probe.checks["outbox"] = NOT_CHECKED
        return
    if row["first_unsent"] is not None:
        state.floor = max(state.floor, row["first_unsent"] - 1 - state.floor_slack)
    probe.unsent, probe.oldest_seconds = row["unsent"], max(row["oldest_seconds"] or 0.0, 0.0)
    limits, problems = state.limits, []
    if limits.max_unsent and probe.unsent > limits.max_unsent:
        problems.append(f"more than {limits.max_unsent} notifications unsent")
    if limits.max_age_seconds and probe.oldest_seconds > limits.max_age_seconds:
        problems.append(f"the oldest unsent notification waited {probe.oldest_seconds:.0f} s")
    probe.checks["outbox"] = "; ".join(problems) or "ok"


async def probe(app: Any) -> Probe:
    """Run the readiness checks against ``app``'s pool (also used by ``/metrics`` for the outbox gauges)."""
    found = Probe()
    pool: asyncpg.Pool | None = getattr(app.state, "pool", None)
    try:
        if pool is None:
            raise ConnectionError("no database pool (the server is starting or stopping)")
        await asyncio.wait_for(_query(pool, readiness(app), found), READY_TIMEOUT_SECONDS)
    except (OSError, TimeoutError, asyncpg.PostgresError, asyncpg.InterfaceError) as error:
        reason = "timed out" if isinstance(error, TimeoutError) else type(error).__name__
        found.checks = {
            "database": f"unreachable ({reason})",
            "schema": NOT_CHECKED,
            "outbox": NOT_CHECKED,
        }
    return found


# --- the routes ---------------------------------------------------------------------------------------------
async def healthz(request: Request) -> Response:
    """Liveness: the process answers (no I/O, so a slow database never gets the process restarted)."""
    return JSONResponse({"status": "ok"}, headers=NO_STORE)


async def readyz(request: Request) -> Response:
    """Readiness: 200 when every check is ok, else 503 naming the failed ones."""
    found = await probe(request.app)
    limits = readiness(request.app).limits
    body: dict[str, Any] = {
        "status": "unready" if found.failed else "ready",
        "checks": found.checks,
        "outbox": {
            "unsent": found.unsent,
            "oldest_unsent_seconds": round(found.oldest_seconds, 3),
            "max_unsent": limits.max_unsent,
            "max_age_seconds": limits.max_age_seconds,
        },
    }
    if found.failed:
        body["failed"] = found.failed
    return JSONResponse(body, status_code=503 if found.failed else 200, headers=NO_STORE)


def routes() -> list[Route]:
    return [
        Route("/healthz", healthz, methods=["GET"]),
        Route("/readyz", readyz, methods=["GET"]),
    ]
