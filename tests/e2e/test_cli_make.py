"""The Makefile's run target (issue 10; README "Two commands"): ``make run`` honours HOST and PORT and
installs only what running needs; ``make test`` installs the test tools too."""

from __future__ import annotations

import contextlib
import os
import shutil
import signal
import subprocess
import tempfile
import time
from pathlib import Path

import httpx

from tests.e2e.cli_processes import free_port, isolated_env, open_dir

ROOT = Path(__file__).resolve().parents[2]
MAKE = shutil.which("make") or "make"  # a prerequisite of the project (README "Two commands")


def dry_run(target: str) -> str:
    """What ``make <target>`` would run on a machine with no virtualenv yet."""
    venv = Path(tempfile.mkdtemp(prefix="scimledger-venv-")) / "venv"
    done = subprocess.run(
        [str(MAKE), "-n", target, f"VENV={venv}"], cwd=ROOT, capture_output=True, text=True, check=True
    )
    return done.stdout


def test_make_run_installs_only_what_running_needs() -> None:
    planned = dry_run("run")
    assert "pip install --quiet -e ." in planned
    assert "[test]" not in planned


def test_make_test_installs_the_test_tools() -> None:
    assert "pip install --quiet -e '.[test]'" in dry_run("test")


def test_make_run_listens_on_host_and_port(database_url: str) -> None:
    port = free_port()
    env = isolated_env(DATABASE_URL=database_url, SCIMLEDGER_HOME=str(open_dir("scimledger-make-")))
    env.pop("MAKEFLAGS", None)
    # -o: the installation is taken as done (this checkout's virtualenv is the one under test)
    command = [
        str(MAKE),
        "-o",
        ".venv/.run-stamp",
        "-o",
        ".venv/bin/python",
        "run",
        "HOST=127.0.0.1",
        f"PORT={port}",
    ]
    make = subprocess.Popen(
        command, cwd=ROOT, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, start_new_session=True
    )
    try:
        deadline = time.monotonic() + 60
        while True:
            with contextlib.suppress(httpx.TransportError):
                if httpx.get(f"http://127.0.0.1:{port}/scim/v2/ServiceProviderConfig", timeout=1).is_success:
                    break
            assert make.poll() is None and time.monotonic() < deadline, (
                make.stdout.read() if make.stdout else ""
            )
            time.sleep(0.1)
    finally:
        with contextlib.suppress(ProcessLookupError):
            os.killpg(make.pid, signal.SIGTERM)
        output = make.communicate(timeout=30)[0].decode()
    assert f'--host "127.0.0.1" --port "{port}"' in output
