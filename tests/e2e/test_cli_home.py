"""The data directory does not depend on the current directory (issue 10, defect 3; README "CLI"): a command
run elsewhere finds the data that ``serve`` recorded, never makes a database of its own, and says where it
looked when there is none; ``audit verify`` on an empty log says so and fails."""

from __future__ import annotations

import json
import shutil
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.e2e.cli_processes import Serving, isolated_env, open_dir, postmaster, run, run_json, wait_until


@pytest.fixture
def project() -> Iterator[Path]:
    """A project directory (where ``make run`` would start the server) and, beside it, nothing else."""
    root = open_dir("scimledger-project-")
    (root / "project").mkdir(mode=0o755)
    (root / "elsewhere").mkdir(mode=0o755)
    yield root
    wait_until(
        lambda: postmaster(root / "project" / ".scimledger") is None, 30, "the embedded server to stop"
    )
    shutil.rmtree(root, ignore_errors=True)


def test_a_command_run_elsewhere_uses_the_data_serve_recorded(project: Path) -> None:
    env = isolated_env()
    home = project / "project" / ".scimledger"
    with Serving(env, cwd=project / "project"):
        demo = json.loads((home / "demo-credentials.json").read_text())
        recorded = Path(env["XDG_CONFIG_HOME"]) / "scimledger" / "home"
        assert recorded.read_text().strip() == str(home)
        verified = run_json(env, "audit", "verify", cwd=project / "elsewhere")
    assert verified["ok"] is True
    assert [w["workspace_id"] for w in verified["workspaces"]] == [demo["workspace_id"]]
    assert list((project / "elsewhere").iterdir()) == []  # no second, empty database


def test_without_data_a_command_creates_nothing_and_names_where_it_looked(project: Path) -> None:
    env = isolated_env()
    elsewhere = project / "elsewhere"
    done = run(env, "audit", "verify", cwd=elsewhere)
    assert done.returncode != 0
    [line] = done.stderr.splitlines()
    record = Path(env["XDG_CONFIG_HOME"]) / "scimledger" / "home"
    assert "SCIMLEDGER_HOME" in line and str(elsewhere / ".scimledger") in line and str(record) in line
    assert done.stdout == ""
    assert list(elsewhere.iterdir()) == [] and not record.exists()


def test_a_home_without_a_database_is_an_error_not_a_new_database(project: Path) -> None:
    home = project / "elsewhere" / "home"
    home.mkdir()
    done = run(isolated_env(SCIMLEDGER_HOME=str(home)), "workspace", "create", "--name", "Acme")
    assert done.returncode == 1
    [line] = done.stderr.splitlines()
    assert line.startswith("error: SCIMLEDGER_HOME: ") and str(home) in line and "scimledger serve" in line
    assert list(home.iterdir()) == []


def test_the_current_directory_wins_over_the_recorded_one(project: Path) -> None:
    """``.scimledger`` in the current directory is that project's data, whatever another one recorded."""
    env = isolated_env()
    record = Path(env["XDG_CONFIG_HOME"]) / "scimledger" / "home"
    record.parent.mkdir(parents=True)
    record.write_text(str(project / "project" / ".scimledger") + "\n")
    local = project / "elsewhere" / ".scimledger"
    local.mkdir()
    done = run(env, "workspace", "create", "--name", "Acme", cwd=project / "elsewhere")
    assert done.returncode == 1
    assert str(local) in done.stderr and "current directory" in done.stderr
    assert not (project / "project" / ".scimledger").exists()


def test_audit_verify_on_an_empty_log_says_so_and_fails(database_url: str) -> None:
    done = run(
        isolated_env(DATABASE_URL=database_url, SCIMLEDGER_HOME=str(open_dir("h-"))), "audit", "verify"
    )
    assert done.returncode == 1
    result = json.loads(done.stdout)
    assert (
        result["ok"] is False and result["workspaces"] == [] and result["detail"] == "the log has no events"
    )
    assert "nothing was verified" in done.stderr
