"""The README's five-minute tour works as written: its shell block runs against a real ``scimledger serve``
(first run: the demo workspace and its credentials) and every step answers as the README says."""

from __future__ import annotations

import re
import subprocess
from pathlib import Path

README = Path(__file__).resolve().parents[2] / "README.md"


def tour_script() -> str:
    text = README.read_text()
    section = text.split("## A five-minute tour", 1)[1]
    match = re.search(r"```sh\n(.*?)```", section, re.S)
    assert match, "the tour section has no sh block"
    return match.group(1)


def test_readme_tour_runs_against_a_real_server(server: tuple[str, dict[str, str], Path]) -> None:
    url, env, home = server
    done = subprocess.run(
        ["bash", "-euo", "pipefail", "-c", tour_script()],
        env={**env, "BASE": url, "SCIMLEDGER_HOME": str(home)},
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert done.returncode == 0, done.stdout + done.stderr
    out = done.stdout
    assert '"userName":"ada@example.com"' in out
    assert '"totalResults":1' in out
    assert '"displayName":"Engineering"' in out
    assert '"active":false' in out
    assert '"status":"suspended"' in out
    assert '"scimType":"mutability"' in out  # the last admin is protected
    assert out.rstrip().endswith("403")  # a read-only token cannot write
