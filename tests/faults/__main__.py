"""``python -m tests.faults [--seed N] [--requests N] [--deadline S] [--scenario NAME ...]``: the fault suite
(issue 8, "Fault suite"; ``make faults`` runs it at full size).

Each scenario gets a fresh database on the suite's own PostgreSQL and real ``scimledger serve`` processes;
its load has a request cap, a deadline and a seed. Every request is recorded as ok, rejected or unknown
(tests/faults/load.py), and afterwards checked against the log (tests/faults/checks.py): acknowledged writes
exactly once, rejected ones not at all, resent creates 201 or 409 and present once, ``projections rebuild
--verify`` and ``audit verify`` pass. Prints a table per scenario and writes it, with every check and figure,
to ``tests/artifacts/faults-<UTC time>.json``. Exit code 1 when a check failed.
"""

from __future__ import annotations

import argparse
import asyncio
import datetime as dt
import json
import sys
import tempfile
from pathlib import Path

from tests.faults.cluster import Cluster
from tests.faults.scenarios import SCENARIOS, Options, Report

ARTIFACTS = Path(__file__).resolve().parents[1] / "artifacts"


async def run_scenarios(cluster: Cluster, names: list[str], options: Options) -> list[Report]:
    reports = []
    for name in names:
        print(f"faults: {name} ...", file=sys.stderr, flush=True)
        reports.append(await SCENARIOS[name](cluster, options))
    return reports


def table(reports: list[Report]) -> str:
    head = f"{'scenario':<12} {'requests':>8} {'ok':>6} {'rejected':>8} {'unknown':>7} {'resent':>6} "
    lines = [head + f"{'checks':>8} {'seconds':>7}"]
    for r in reports:
        passed = sum(c.passed for c in r.checks)
        lines.append(
            f"{r.scenario:<12} {r.tally['requests']:>8} {r.tally['ok']:>6} {r.tally['rejected']:>8} "
            f"{r.tally['unknown']:>7} {r.resent:>6} {f'{passed}/{len(r.checks)}':>8} {r.seconds:>7.1f}"
        )
        lines += [f"    FAILED {c.name}: {c.detail}" for c in r.checks if not c.passed]
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tests.faults", description=__doc__.split("\n\n")[0])
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--requests", type=int, default=2000, help="request cap per scenario")
    parser.add_argument("--deadline", type=float, default=120.0, help="seconds of load per scenario")
    parser.add_argument("--outage", type=float, default=5.0, help="seconds PostgreSQL is down in 'outage'")
    parser.add_argument(
        "--scenario", action="append", choices=sorted(SCENARIOS), help="(repeatable; default: all)"
    )
    args = parser.parse_args(argv)
    names = args.scenario or list(SCENARIOS)
    work = Path(tempfile.mkdtemp(prefix="scimledger-faults-"))
    options = Options(args.seed, args.requests, args.deadline, work, args.outage)
    started = dt.datetime.now(dt.UTC)
    with Cluster() as cluster:
        reports = asyncio.run(run_scenarios(cluster, names, options))
    print(table(reports))
    ARTIFACTS.mkdir(exist_ok=True)
    out = ARTIFACTS / f"faults-{started:%Y%m%dT%H%M%SZ}.json"
    summary = {
        "started": started.isoformat(),
        "seed": args.seed,
        "requests": args.requests,
        "deadline": args.deadline,
        "server_logs": str(work),
        "scenarios": [r.as_json() for r in reports],
    }
    out.write_text(json.dumps(summary, indent=2) + "\n")
    print(f"written to {out}; server logs in {work}")
    return 0 if all(r.passed for r in reports) else 1


if __name__ == "__main__":
    sys.exit(main())
