"""The benchmark's machinery: servers on free ports, wrk runs of a request pool, CPU accounting.

A server (``scimledger serve``, a ceiling app, the peer) runs in its own process group on 127.0.0.1 until all
its uvicorn workers have started and it answers HTTP, and is always killed with its whole group afterwards.
A run is wrk (one thread) with ``replay.lua`` sending the lines of a pool file (see ``pools.py``) over a fixed
number of keep-alive connections for a fixed time, or until a pool that does not cycle is used up; it gives
req/s, latency percentiles, HTTP statuses, errors and where the CPU went (the load generator, the app, the
PostgreSQL we started, and "other": processes not ours, which make the figures unreliable on a shared
machine). Also used by ``bench/audit.py``.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import os
import resource
import shutil
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import asyncpg

BENCH = Path(__file__).resolve().parent
ROOT = BENCH.parent
BIN = Path(sys.executable).parent
REPLAY = BENCH / "replay.lua"
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


def wrk_version(wrk: str) -> str:
    return subprocess.run([wrk, "-v"], capture_output=True, text=True).stdout.split("[")[0].strip()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def sql(url: str, query: str, *args: Any) -> Any:
    """One statement on a connection of its own; its first value."""

    async def run() -> Any:
        conn = await asyncpg.connect(url)
        try:
            return await conn.fetchval(query, *args)
        finally:
            await conn.close()

    return asyncio.run(run())


def code_version() -> str:
    """The commit measured, with "+dirty" when the work tree differs from it (read-only git commands)."""
    git = ["git", "-C", str(ROOT)]
    commit = subprocess.run(
        [*git, "rev-parse", "--short", "HEAD"], capture_output=True, text=True
    ).stdout.strip()
    dirty = subprocess.run(
        [*git, "status", "--porcelain", "--", "src", "projections", "schema.sql"],
        capture_output=True,
        text=True,
    ).stdout.strip()
    return f"{commit or 'unknown'}{'+dirty' if dirty else ''}"


def answers(port: int) -> bool:
    try:
        urllib.request.urlopen(f"http://127.0.0.1:{port}/", timeout=1).close()
    except urllib.error.HTTPError:
        return True
    except OSError:
        return False
    return True


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


def cpu_percent(before: dict[str, float], after: dict[str, float], seconds: float) -> dict[str, int]:
    """100 = one core busy for the whole run; "other": processes not ours."""
    seconds = max(seconds, 1e-3)
    cpu = {k: round(100 * (after[k] - before[k]) / seconds) for k in before}
    cpu["other"] = cpu.pop("machine") - cpu["loadgen"] - cpu["app"] - cpu["postgres"]
    return cpu


@dataclass(frozen=True)
class Run:
    """One wrk run of a pool file: ``cycle`` sends the pool again and again (reads), otherwise each line
    once and the run ends early when they are all answered; ``{n}`` in a line becomes a counter that starts
    at ``first_n``; a 2xx whose body lacks ``expect`` counts as an error."""

    pool: Path
    seconds: float
    connections: int
    cycle: bool = False
    first_n: int = 1
    expect: str = ""


def wrk_args(wrk: str, base: str, run: Run) -> list[str]:
    return [
        wrk,
        "-t1",
        f"-c{run.connections}",
        f"-d{max(1, round(run.seconds))}s",
        "--timeout",
        "30s",
        "-s",
        str(REPLAY),
        base,
        "--",
        str(run.pool),
        "1" if run.cycle else "0",
        str(run.first_n),
        run.expect,
    ]


def parse_result(output: list[str]) -> dict[str, Any]:
    """The ``BENCH {json}`` line of ``replay.lua``, with req/s, milliseconds and the error count added."""
    line = next((x for x in output if x.startswith("BENCH ")), None)
    if line is None:
        raise RuntimeError("wrk printed no result:\n" + "".join(output))
    r: dict[str, Any] = json.loads(line.removeprefix("BENCH "))
    seconds = r["duration_us"] / 1e6
    r["seconds"] = round(seconds, 2)
    r["rps"] = round(r["answered"] / seconds, 1) if seconds else 0.0
    for q in ("p50", "p90", "p99", "max"):
        r[f"{q}_ms"] = round(r.pop(f"{q}_us") / 1000, 2)
    r["statuses"] = {str(k): v for k, v in sorted(r.get("statuses", {}).items())}
    r["errors"] = r["failed"] + r["socket_errors"] + r["timeouts"]
    return r


def run_wrk(wrk: str, base: str, run: Run, server_pid: int, pg_pid: int | None) -> dict[str, Any]:
    """wrk with ``replay.lua``; once a pool that does not cycle is used up and answered (it prints DONE),
    wrk is ended early with SIGINT (its summary then covers the time until then)."""
    before = cpu_now(server_pid, pg_pid)
    args = wrk_args(wrk, base, run)
    with subprocess.Popen(args, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True) as proc:
        assert proc.stdout is not None
        output = []
        for line in proc.stdout:
            output.append(line)
            if line == "DONE\n":
                proc.send_signal(signal.SIGINT)
    if proc.returncode != 0:
        raise RuntimeError(f"wrk failed ({proc.returncode}):\n" + "".join(output))
    after = cpu_now(server_pid, pg_pid)
    r = parse_result(output)
    r["connections"] = run.connections
    r["cpu_percent"] = cpu_percent(before, after, r["seconds"])
    return r
