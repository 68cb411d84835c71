"""The benchmark's one table: each workload against its baseline from the same run, ratio, target, verdict.

A row compares scimledger's measurement with a baseline measurement (a ceiling app, scimledger itself in
another shape, or the peer ``scim2-server``): ratio = ours req/s / baseline req/s. A row passes when both
measurements exist, neither had an error (a non-2xx, a socket error, a timeout, an unexpected body) and
the row's targets hold; a row without a target only needs no errors. Printed as text, written as Markdown
(``latest.md``, for the README's "Performance"), and as JSON with every measurement.
"""

from __future__ import annotations

import dataclasses
import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

BASELINES = {
    "ceiling": "one-INSERT ceiling",
    "read-ceiling": "one-SELECT ceiling",
    "one-workspace": "ours, one workspace",
    "peer": "scim2-server",
}


@dataclasses.dataclass(frozen=True)
class Comparison:
    """A row: the ``ours`` measurement against the ``baseline`` one (keys of the measurements)."""

    workload: str
    ours: str
    baseline: str | None = None
    baseline_kind: str | None = None  # a key of BASELINES
    ratio_min: float | None = None
    p99_max_ms: float | None = None


def comparisons(workers: Sequence[int], lookup_members: int, peer_users: int) -> list[Comparison]:
    """The rows of ``make bench``: per worker count, then the peer (one worker)."""
    rows = []
    for w in workers:
        rows += [
            Comparison(f"POST /Users, new user ({w}w)", f"create/ours/{w}w", f"create/ceiling/{w}w",
                       "ceiling", 0.4, 100.0),
            Comparison(f"GET /Users?filter=userName eq, {lookup_members:,} members ({w}w)",
                       f"lookup/ours/{w}w", f"lookup/ceiling/{w}w", "read-ceiling", 0.6),
            Comparison(f"POST /Users over 20 workspaces vs one ({w}w)", f"create-spread/ours/{w}w",
                       f"create/ours/{w}w", "one-workspace", 1.5),
            Comparison(f"PATCH active=false, Okta ({w}w)", f"deactivate/ours/{w}w"),
            Comparison(f"PATCH /Groups add 1 member ({w}w)", f"group-add/ours/{w}w"),
            Comparison(f"Entra mix, 20 workspaces ({w}w)", f"entra/ours/{w}w"),
            Comparison(f"Okta mix, 20 workspaces ({w}w)", f"okta/ours/{w}w"),
        ]  # fmt: skip
    rows += [
        Comparison("create vs peer (1w)", "create/ours/1w", "create/peer/1w", "peer", 3.0),
        Comparison(f"look-up vs peer, {lookup_members:,} vs {peer_users:,} users (1w)",
                   "lookup/ours/1w", "lookup/peer/1w", "peer"),
        Comparison("group member add vs peer (1w)", "group-add/ours/1w", "group-add/peer/1w", "peer"),
    ]  # fmt: skip
    return rows


def target_text(c: Comparison) -> str:
    parts = []
    if c.ratio_min is not None:
        parts.append(f">= {c.ratio_min:g}")
    if c.p99_max_ms is not None:
        parts.append(f"p99 < {c.p99_max_ms:g} ms")
    return ", ".join(parts) or "no errors"


def evaluate(c: Comparison, measurements: dict[str, dict[str, Any]]) -> dict[str, Any]:
    """The row's figures and verdict; a missing or failed measurement fails the row and says why."""
    ours = measurements.get(c.ours)
    base = measurements.get(c.baseline) if c.baseline else None
    row: dict[str, Any] = {
        **dataclasses.asdict(c),
        "baseline_name": BASELINES.get(c.baseline_kind or "", ""),
        "target": target_text(c),
        "ours_rps": None,
        "ours_p99_ms": None,
        "baseline_rps": None,
        "baseline_p99_ms": None,
        "ours_errors": None,
        "baseline_errors": None,
        "ratio": None,
        "problems": [],
    }
    for label, m, name in (("ours", ours, c.ours), ("baseline", base, c.baseline)):
        if name is None:
            continue
        if m is None or "error" in m:
            row["problems"].append(f"{label} {name}: " + (m["error"] if m else "not measured"))
            continue
        row[f"{label}_rps"], row[f"{label}_p99_ms"] = m["rps"], m["p99_ms"]
        row[f"{label}_errors"] = m["errors"]
        if m["errors"]:
            row["problems"].append(f"{label}: {m['errors']} errors ({m['first_error']})")
    if row["ours_rps"] is not None and row["baseline_rps"]:
        row["ratio"] = round(row["ours_rps"] / row["baseline_rps"], 3)
    if c.ratio_min is not None and (row["ratio"] is None or row["ratio"] < c.ratio_min):
        row["problems"].append("ratio below target" if row["ratio"] is not None else "no ratio")
    if c.p99_max_ms is not None and (row["ours_p99_ms"] is None or row["ours_p99_ms"] >= c.p99_max_ms):
        row["problems"].append("p99 above target")
    row["pass"] = not row["problems"]
    return row


def rows_for(
    comparisons: Sequence[Comparison], measurements: dict[str, dict[str, Any]]
) -> list[dict[str, Any]]:
    return [evaluate(c, measurements) for c in comparisons]


def cells(row: dict[str, Any]) -> list[str]:
    ours = "missing" if row["ours_rps"] is None else f"{row['ours_rps']:,.0f}, {row['ours_p99_ms']:.1f} ms"
    if row["baseline"] is None:
        base = "-"
    elif row["baseline_rps"] is None:
        base = f"missing ({row['baseline_name']})"
    else:
        base = f"{row['baseline_rps']:,.0f}, {row['baseline_p99_ms']:.1f} ms ({row['baseline_name']})"
    ratio = "-" if row["ratio"] is None else f"{row['ratio']:.2f}"
    return [row["workload"], ours, base, ratio, row["target"], "PASS" if row["pass"] else "FAIL"]


HEADER = ["workload", "ours req/s, p99", "baseline req/s, p99", "ratio", "target", "result"]


def table(rows: Sequence[dict[str, Any]]) -> str:
    """The plain-text table, columns aligned."""
    lines = [HEADER, *(cells(r) for r in rows)]
    widths = [max(len(line[i]) for line in lines) for i in range(len(HEADER))]
    text = ["  ".join(v.ljust(w) for v, w in zip(line, widths, strict=True)).rstrip() for line in lines]
    text.insert(1, "  ".join("-" * w for w in widths))
    return "\n".join(text)


def markdown(rows: Sequence[dict[str, Any]], meta: dict[str, Any]) -> str:
    """The table in Markdown, with what was measured and how, for the README's "Performance"."""
    out = [
        f"Measured {meta['started']} on commit {meta['code']}, {meta['cores']} cores, profile "
        f"`{meta['profile']}` ({meta['seconds_per_run']:g} s per run after {meta['warmup_per_run']:g} s of "
        f"warm-up, {meta['connections']} connections, {meta['loadgen']}); PostgreSQL: {meta['database']} "
        f"(fsync/synchronous_commit {meta['fsync_synchronous_commit']}). Baselines were measured in the "
        "same run. Ratio = ours req/s / baseline req/s. Data seeded through the real handlers (the "
        "seeding's own notifications are not queued); the peer serves its ASGI app from memory on the same "
        "uvicorn stack, 1 worker. Every figure, the CPU split and the HTTP statuses of each run: "
        "`bench/results/latest.json`.",
        "",
        "| " + " | ".join(HEADER) + " |",
        "|" + "|".join(["---"] * len(HEADER)) + "|",
    ]
    out += ["| " + " | ".join(cells(r)) + " |" for r in rows]
    problems = [f"- {r['workload']}: {'; '.join(r['problems'])}" for r in rows if r["problems"]]
    if problems:
        out += ["", "Why rows failed:", *problems]
    if meta.get("noisy"):
        noisy = ", ".join(meta["noisy"])
        out += ["", f"Not clean: processes not ours used more than 20% of a core during {noisy}."]
    return "\n".join(out) + "\n"


def write(out_dir: Path, stamp: str, document: dict[str, Any], md: str) -> list[Path]:
    """``<stamp>.json`` and ``latest.json``, ``latest.md``; the paths written."""
    out_dir.mkdir(parents=True, exist_ok=True)
    text = json.dumps(document, indent=2, default=str) + "\n"
    paths = [out_dir / f"{stamp}.json", out_dir / "latest.json", out_dir / "latest.md"]
    paths[0].write_text(text)
    paths[1].write_text(text)
    paths[2].write_text(md)
    return paths
