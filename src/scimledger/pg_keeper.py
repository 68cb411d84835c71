"""The keeper of a shared embedded PostgreSQL (README "CLI"; issue 10, defect 4). Standard library only: it
runs as ``python -m scimledger.pg_keeper SPEC`` and must start fast.

Every process that uses the embedded server of a data directory (``scimledger serve``, any other command)
holds a *lease*: a file under ``<home>/run/users`` locked with ``flock`` for as long as the process lives
(the kernel drops the lock when the process dies, SIGKILL included). The keeper is the server's parent, in
a session of its own (a Ctrl-C in the terminal that started it does not reach it). Every POLL_SECONDS it
counts the leases; when none is held it stops the server (fast shutdown) and exits. So the server outlives
every process that uses it, and stops after the last one.

Attaching and stopping are serialised by ``<home>/run/lifecycle.lock``: a process takes it to find the
running server (or start one) and take its lease; the keeper takes it, without waiting, to count the
leases and stop. A process therefore never attaches to a server that is about to stop.
"""

from __future__ import annotations

import contextlib
import ctypes
import fcntl
import json
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from typing import Any

POLL_SECONDS = 0.2
LOCK_FILE = "lifecycle.lock"
USERS_DIR = "users"
_PR_SET_PDEATHSIG = 1


def demote(uid: int | None, gid: int | None, death_signal: int) -> Callable[[], None]:
    """A ``preexec_fn``: drop to ``uid``/``gid`` (when given), ask for ``death_signal`` when the parent dies,
    and start a session of its own. PR_SET_PDEATHSIG is cleared by credential changes, so it comes after."""

    def run() -> None:
        if uid is not None and gid is not None:
            os.setgid(gid)
            os.setgroups([gid])
            os.setuid(uid)
        if sys.platform.startswith("linux"):
            libc = ctypes.CDLL("libc.so.6", use_errno=True)
            libc.prctl(_PR_SET_PDEATHSIG, death_signal)
        os.setsid()

    return run


def leases_held(run: Path) -> int:
    """How many processes hold a lease; the files of processes that are gone are removed."""
    held = 0
    for path in (run / USERS_DIR).glob("*.lease"):
        try:
            fd = os.open(path, os.O_RDWR)
        except FileNotFoundError:
            continue
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            held += 1
        else:
            path.unlink(missing_ok=True)  # its process is gone (the lock died with it)
        finally:
            os.close(fd)
    return held


def stop(server: subprocess.Popen[bytes]) -> None:
    """Fast shutdown (SIGINT); immediate (SIGQUIT) if that takes more than a minute."""
    with contextlib.suppress(ProcessLookupError):
        server.send_signal(signal.SIGINT)
    try:
        server.wait(timeout=60)
    except subprocess.TimeoutExpired:
        server.send_signal(signal.SIGQUIT)
        server.wait()


def stop_when_unused(run: Path, server: subprocess.Popen[bytes], *, wait: bool = False) -> bool:
    """Under the lifecycle lock: stop the server when no lease is held (always, with ``wait``: the keeper
    was told to stop). True when it was stopped."""
    with (run / LOCK_FILE).open("a") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX if wait else fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            return False  # a process is attaching: it will hold a lease
        if not wait and leases_held(run):
            return False
        stop(server)
        return True


def keep(spec: dict[str, Any]) -> int:
    """Run the server described by ``spec`` (argv, log, run, uid, gid) until nobody uses it."""
    run = Path(spec["run"])
    told_to_stop = False

    def on_signal(*_: object) -> None:
        nonlocal told_to_stop
        told_to_stop = True

    for number in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(number, on_signal)
    with open(spec["log"], "ab") as log:
        server = subprocess.Popen(
            [str(a) for a in spec["argv"]],
            stdout=log,
            stderr=log,
            stdin=subprocess.DEVNULL,
            # A keeper killed with SIGKILL leaves nobody to stop the server later: it stops now.
            preexec_fn=demote(spec.get("uid"), spec.get("gid"), signal.SIGINT),
        )
    while server.poll() is None:
        if stop_when_unused(run, server, wait=told_to_stop):
            break
        time.sleep(POLL_SECONDS)
    return 0


if __name__ == "__main__":
    raise SystemExit(keep(json.loads(sys.argv[1])))
