"""The README's auditor walkthrough works as written: after the tour, its shell block exports the log, takes
a signed checkpoint, verifies both offline, replays the workspace into a schema and queries it with psql,
against a real ``scimledger serve``."""

from __future__ import annotations

import re
import shutil
import subprocess
import sys
from pathlib import Path

from tests.e2e.test_readme_tour import README, tour_script


def walkthrough_script() -> str:
    section = README.read_text().split("## An auditor's walkthrough", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the walkthrough section has no sh block"
    return match.group(1)


def run(script: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        ["bash", "-euo", "pipefail", "-c", script], env=env, capture_output=True, text=True, timeout=180
    )


def test_readme_auditor_walkthrough_runs_against_a_real_server(
    server: tuple[str, dict[str, str], Path],
) -> None:
    assert shutil.which("psql"), "psql is needed (Debian: apt-get install postgresql-client)"
    url, env, home = server
    cli = str(Path(sys.executable).with_name("scimledger"))
    env = {**env, "BASE": url, "SCIMLEDGER_HOME": str(home), "SCIMLEDGER": cli}
    tour = run(tour_script(), env)
    assert tour.returncode == 0, tour.stdout + tour.stderr
    done = run(walkthrough_script(), env)
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert '"entries":[' in out and '"next_cursor"' in out
    assert '"admins":' in out or '"admin' in out
    assert '"ok": true' in out  # the offline verification
    assert '"extended": true' in out  # the export extends the signed checkpoint
    assert re.search(r"ada@example\.com\s*\|\s*active\s*\|\s*admin", out)
    assert re.search(r"bob@example\.com\s*\|\s*suspended\s*\|\s*member", out)
