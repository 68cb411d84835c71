"""``make bench``: how close ``POST /scim/v2/Users`` comes to what this machine can do at all.

For 1 and 2 uvicorn workers, on 127.0.0.1 with the same load generator (wrk, ``post_users.lua``: a unique
``user-<n>@example.com`` per request), the same 64 connections and the same number of requests, it measures

  (a) the ceiling: ``bench/ceiling_app.py``, one INSERT of a ~300-byte jsonb row per request, and
  (b) ``scimledger serve``: ``POST /scim/v2/Users`` end to end, into a fresh workspace with a CLI-made token,

both against the same PostgreSQL: a fresh embedded one with fsync on (or ``DATABASE_URL`` when set). Each
target is warmed up first. It prints req/s, p50/p99 latency, errors (non-2xx, socket errors, unanswered), the
throughput ratio b/a and where the CPU went (wrk, app, PostgreSQL, and "other": processes not ours, which make
the figures unreliable on a shared 2-core machine); checks that the log holds one ``MemberProvisioned`` event
per 201; and writes ``bench/results/<UTC time>.json`` and ``bench/results/latest.json``. Targets (b/a >= 0.5,
p99(b) < 100 ms, no errors) are reported as PASS/FAIL; the exit code is 0 unless something broke.
Options: ``--requests N`` (or ``BENCH_REQUESTS``), ``--warmup N``.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import datetime as dt
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg

from scimledger import pg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
CONNECTIONS = 64
WRK_THREADS = 1  # one wrk thread drives 64 connections at far more than these servers serve; spares a core
MAX_SECONDS = {"warm-up": 30, "measured": 100}  # per wrk run: bounds the whole bench under 10 minutes
TARGET_RATIO, TARGET_P99_MS = 0.5, 100.0
OTHER_CPU_WARN = 20  # % of one core used by processes not ours: the figures are then not clean


def ensure_wrk() -> str:
    """The wrk binary; installed from Debian's packages when missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() != 0 or not shutil.which("apt-get"):
        sys.exit("bench: wrk is missing; install it (Debian: apt-get install wrk)")
    print("bench: installing wrk (apt-get) ...", flush=True)
    subprocess.run(["apt-get", "update", "-qq"], stdout=subprocess.DEVNULL, check=True)
    subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], stdout=subprocess.DEVNULL, check=True)
    return shutil.which("wrk") or sys.exit("bench: apt-get installed no wrk")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sql(url: str, query: str, *args: Any) -> Any:
    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


@contextlib.contextmanager
def server(
    name: str, args: list[str], env: dict[str, str], workers: int, log_dir: Path
) -> Iterator[tuple[str, int]]:
    """Run a uvicorn-based server in its own process group until all ``workers`` have started and it answers
    HTTP; yield its base URL and pid; always kill its whole process group afterwards."""
    port = free_port()
    log = log_dir / f"{name}-{workers}w.log"
    with log.open("wb") as out:
        proc = subprocess.Popen(
            [*args, "--host", "127.0.0.1", "--port", str(port), "--workers", str(workers)],
            env=env,
            stdout=out,
            stderr=subprocess.STDOUT,
            stdin=subprocess.DEVNULL,
            start_new_session=True,
        )
    try:
        deadline = time.monotonic() + 60
        while log.read_text().count("Application startup complete") < workers or not answers(port):
            if proc.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"{name} did not start; see {log}:\n{log.read_text()[-2000:]}")
            time.sleep(0.1)
        yield f"http://127.0.0.1:{port}", proc.pid
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        with contextlib.suppress(ProcessLookupError):  # stray workers, if the supervisor left any
            os.killpg(proc.pid, signal.SIGKILL)


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


def tree_cpu(roots: list[int | None]) -> list[float]:
    """CPU seconds (user + system) used so far by each root process and its live descendants."""
    procs: dict[int, tuple[int, int]] = {}  # pid -> (ppid, ticks)
    for stat in Path("/proc").glob("[0-9]*/stat"):
        with contextlib.suppress(OSError, IndexError):
            fields = stat.read_text().rsplit(")", 1)[1].split()  # state ppid ... utime(11) stime(12)
            procs[int(stat.parent.name)] = (int(fields[1]), int(fields[11]) + int(fields[12]))
    totals = [0.0] * len(roots)
    for pid, (_, ticks) in procs.items():
        p: int | None = pid
        while p:
            if p in roots:
                totals[roots.index(p)] += ticks / os.sysconf("SC_CLK_TCK")
            p = procs[p][0] if p in procs else None
    return totals


def cpu_now(server_pid: int, pg_pid: int | None) -> dict[str, float]:
    """CPU seconds so far: the load generator (reaped children), app, PostgreSQL, and the whole machine."""
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    app, postgres = tree_cpu([server_pid, pg_pid])
    ticks = [int(x) for x in Path("/proc/stat").read_text().split("\n", 1)[0].split()[1:]]
    machine = (sum(ticks[:8]) - ticks[3] - ticks[4]) / os.sysconf("SC_CLK_TCK")  # all but idle and iowait
    return {
        "loadgen": children.ru_utime + children.ru_stime,
        "app": app,
        "postgres": postgres,
        "machine": machine,
    }


class Load:
    """wrk with ``post_users.lua``: a fixed number of requests per run; ``next_n`` keeps userNames unique."""

    def __init__(self, wrk: str, first_n: int, pg_pid: int | None) -> None:
        self.wrk, self.next_n, self.pg_pid = wrk, first_n, pg_pid

    def run(self, url: str, server_pid: int, requests: int, token: str | None, cap: int) -> dict[str, Any]:
        quota = requests // WRK_THREADS
        args = [
            self.wrk,
            f"-t{WRK_THREADS}",
            f"-c{CONNECTIONS}",
            f"-d{cap}s",
            "--timeout",
            "30s",
            "-s",
            str(BENCH / "post_users.lua"),
            url,
            "--",
            str(quota),
            str(self.next_n),
        ]
        self.next_n += quota * WRK_THREADS + 1
        before = cpu_now(server_pid, self.pg_pid)
        output = self._wrk([*args, *([token] if token else [])])
        after = cpu_now(server_pid, self.pg_pid)
        line = next((x for x in output if x.startswith("BENCH ")), None)
        if line is None:
            raise RuntimeError("wrk printed no result:\n" + "".join(output))
        r: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
        seconds = r["duration_us"] / 1e6
        r["rps"] = round(r["answered"] / seconds, 1)
        r["p50_ms"], r["p99_ms"] = r["p50_us"] / 1000, r["p99_us"] / 1000
        r["errors"] = r["non_2xx"] + r["socket_errors"] + r["timeouts"] + (requests - r["answered"])
        cpu = {k: round(100 * (after[k] - before[k]) / seconds) for k in before}
        cpu["other"] = cpu.pop("machine") - cpu["loadgen"] - cpu["app"] - cpu["postgres"]
        r["cpu_percent"] = cpu  # 100 = one core busy for the whole run; "other": processes not ours
        return r

    @staticmethod
    def _wrk(args: list[str]) -> list[str]:
        """Run wrk; once every thread has printed DONE (its quota answered), end it early with SIGINT."""
        with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
            assert proc.stdout is not None
            output = []
            for line in proc.stdout:
                output.append(line)
                if sum(x == "DONE\n" for x in output) == WRK_THREADS:
                    proc.send_signal(signal.SIGINT)
        if proc.returncode != 0:
            raise RuntimeError(f"wrk failed ({proc.returncode}):\n" + "".join(output))
        return output

    def measure(self, url: str, pid: int, requests: int, warmup: int, token: str | None) -> dict[str, Any]:
        """A warm-up run, then the measured run; the warm-up's creates and errors are kept for the checks."""
        w = self.run(url, pid, warmup, token, MAX_SECONDS["warm-up"])
        r = self.run(url, pid, requests, token, MAX_SECONDS["measured"])
        r["warmup"] = {"requests": warmup, "created": w["created"], "errors": w["errors"]}
        return r


def code_version() -> str:
    """The commit measured, with "+dirty" when the work tree differs from it (read-only git commands)."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run([*git, "status", "--porcelain", "--", "src", "projections", "schema.sql"],
                           capture_output=True, text=True).stdout.strip()  # fmt: skip
    return f"{commit or 'unknown'}{'+dirty' if dirty else ''}"


def cli(env: dict[str, str], *args: str) -> dict[str, Any]:
    out = subprocess.run(
        [str(BIN / "scimledger"), *args], env=env, capture_output=True, text=True, check=True
    )
    result: dict[str, Any] = json.loads(out.stdout)
    return result


def bench_one(
    load: Load, env: dict[str, str], home: Path, workers: int, opts: argparse.Namespace
) -> dict[str, Any]:
    """(a) and (b) with ``workers`` uvicorn workers, and the log check for (b)."""
    ceiling = [str(BIN / "python"), str(BENCH / "ceiling_app.py")]
    with server("ceiling", ceiling, env, workers, home) as (base, pid):
        a = load.measure(f"{base}/ingest", pid, opts.requests, opts.warmup, None)
    ws = cli(
        env,
        "workspace",
        "create",
        "--name",
        f"bench {workers}w",
        "--domain",
        "example.com",
        "--seats",
        "1000000",
        "--auto-seats",
    )
    token = cli(env, "token", "create", "--workspace", ws["workspace_id"], "--name", "bench")["token"]
    with server("scimledger", [str(BIN / "scimledger"), "serve"], env, workers, home) as (base, pid):
        b = load.measure(f"{base}/scim/v2/Users", pid, opts.requests, opts.warmup, token)
    events = sql(
        env["DATABASE_URL"],
        "SELECT count(*) FROM events WHERE workspace_id = $1 AND event_type = 'MemberProvisioned'",
        UUID(ws["workspace_id"]),
    )
    created = b["created"] + b["warmup"]["created"]
    ratio = b["rps"] / a["rps"] if a["rps"] else 0.0
    return {
        "workers": workers,
        "ceiling": a,
        "scim": b,
        "ratio": round(ratio, 3),
        "log_check": {"member_provisioned_events": events, "responses_201": created, "ok": events == created},
        "pass": ratio >= TARGET_RATIO and b["p99_ms"] < TARGET_P99_MS and b["errors"] == 0,
    }


def report(runs: list[dict[str, Any]], meta: dict[str, Any]) -> None:
    print(
        f"\n{'workers':<8}{'target':<24}{'req/s':>9}{'p50 ms':>9}{'p99 ms':>9}{'errors':>8}"
        f"   CPU % (100 = one core): wrk / app / postgres / other"
    )
    for run in runs:
        for label, r in (("(a) ceiling INSERT", run["ceiling"]), ("(b) POST /scim/v2/Users", run["scim"])):
            c = r["cpu_percent"]
            print(
                f"{run['workers']:<8}{label:<24}{r['rps']:>9.1f}{r['p50_ms']:>9.1f}{r['p99_ms']:>9.1f}"
                f"{r['errors']:>8}   {c['loadgen']} / {c['app']} / {c['postgres']} / {c['other']}"
            )
        check = run["log_check"]
        b = run["scim"]
        verdict = "PASS" if run["pass"] else "FAIL"
        print(
            f"{'':<8}b/a = {run['ratio']:.2f} (>= {TARGET_RATIO}), p99(b) = {b['p99_ms']:.1f} ms "
            f"(< {TARGET_P99_MS:.0f}), errors(b) = {b['errors']}: {verdict}"
        )
        ok = "OK" if check["ok"] else "MISMATCH"
        print(
            f"{'':<8}log check: {check['member_provisioned_events']} MemberProvisioned events "
            f"for {check['responses_201']} 201s: {ok}"
        )
        for r in (run["ceiling"], run["scim"]):
            if r["first_error"]:
                print(f"{'':<8}first error: {r['first_error']}")
            if r["cpu_percent"]["other"] > OTHER_CPU_WARN:
                print(f"{'':<8}warning: other processes used {r['cpu_percent']['other']}% CPU during a run")
    out_dir = BENCH / "results"
    out_dir.mkdir(exist_ok=True)
    path = out_dir / f"{meta['started'].replace(':', '').replace('-', '')}.json"
    text = json.dumps({**meta, "runs": runs}, indent=2) + "\n"
    path.write_text(text)
    (out_dir / "latest.json").write_text(text)
    print(f"\nwrote {path.relative_to(ROOT)} and bench/results/latest.json")


def main() -> int:
    parser = argparse.ArgumentParser(description="scimledger throughput against the machine's ceiling")
    parser.add_argument("--requests", type=int, default=int(os.environ.get("BENCH_REQUESTS", "6000")))
    parser.add_argument("--warmup", type=int, default=500)
    opts = parser.parse_args()
    wrk = ensure_wrk()
    wrk_version = subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()
    started, code = dt.datetime.now(dt.UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), code_version()
    home = Path(tempfile.mkdtemp(prefix="scimledger-bench-"))
    home.chmod(0o755)  # as root PostgreSQL runs as 'postgres' and must reach its data directory in here
    url = os.environ.get("DATABASE_URL")
    embedded = None
    try:
        if url:
            database, first_n = "DATABASE_URL", int(time.time()) * 1000  # userNames new to that database
        else:
            embedded = pg.ensure_server(home, fsync=True)
            url, database, first_n = embedded.url(), "fresh embedded PostgreSQL", 1
        fsync = sql(url, "SELECT current_setting('fsync') || '/' || current_setting('synchronous_commit')")
        pg_pid = embedded.pid if embedded else None  # a DATABASE_URL server's CPU is not measured
        print(
            f"bench: code {code}; {database}, fsync/synchronous_commit = {fsync}\n"
            f"bench: {wrk_version}, {WRK_THREADS} thread, {CONNECTIONS} connections, "
            f"{opts.requests} requests per measurement after {opts.warmup} warm-up; "
            f"{os.cpu_count()} cores shared by wrk, app and PostgreSQL",
            flush=True,
        )
        sql(url, "CREATE TABLE IF NOT EXISTS bench_ceiling (id bigserial PRIMARY KEY, doc jsonb NOT NULL)")
        # Throughput is measured with one token: its rate limit (README "Limits") is off here.
        env = {**os.environ, "DATABASE_URL": url, "SCIMLEDGER_HOME": str(home), "SCIMLEDGER_RATE_LIMIT": "0"}
        load = Load(wrk, first_n, pg_pid)
        runs = [bench_one(load, env, home, workers, opts) for workers in (1, 2)]
    finally:
        if embedded is not None:
            pg.stop_server(embedded)
        elif url:
            with contextlib.suppress(Exception):
                sql(url, "DROP TABLE IF EXISTS bench_ceiling")
        shutil.rmtree(home, ignore_errors=True)
    meta = {
        "started": started,
        "code": code,
        "database": database,
        "fsync_synchronous_commit": fsync,
        "loadgen": f"{wrk_version}, {WRK_THREADS} thread, post_users.lua",
        "connections": CONNECTIONS,
        "requests": opts.requests,
        "warmup": opts.warmup,
        "cores": os.cpu_count(),
        "targets": {"ratio_min": TARGET_RATIO, "p99_ms_max": TARGET_P99_MS},
    }
    report(runs, meta)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
