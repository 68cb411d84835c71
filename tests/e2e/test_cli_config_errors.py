"""Bad configuration is one clear line naming the setting and a non-zero exit, never a traceback (issue 10,
defect 6; README "CLI"). Each case runs the real command line in a process of its own."""

from __future__ import annotations

import socket
from pathlib import Path

import pytest

from tests.e2e.cli_processes import isolated_env, open_dir, run


def closed_port() -> int:
    """A port nothing listens on (bound, then closed)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


CASES = [
    pytest.param({"DATABASE_URL": "notaurl"}, ["audit", "verify"], 2, ["DATABASE_URL", "notaurl"], id="url"),
    pytest.param(
        {"DATABASE_URL": f"postgresql://postgres@127.0.0.1:{closed_port()}/db"},
        ["workspace", "create", "--name", "Acme"],
        1,
        ["DATABASE_URL", "PostgreSQL", "connection refused"],
        id="closed-port",
    ),
    pytest.param(
        {"DATABASE_URL": "postgresql://postgres@127.0.0.1:5432/db", "SCIMLEDGER_MIGRATE_URL": "mysql://x/y"},
        ["migrate"],
        2,
        ["SCIMLEDGER_MIGRATE_URL", "not a PostgreSQL URL"],
        id="migrate-url",
    ),
    pytest.param({}, ["serve", "--port", "99999"], 2, ["--port", "99999", "65535"], id="port"),
    pytest.param(
        {}, ["serve", "--port", "http"], 2, ["--port", "'http' is not a whole number"], id="port-text"
    ),
    pytest.param({}, ["serve", "--workers", "0"], 2, ["--workers", "0"], id="workers"),
    pytest.param(
        {}, ["workspace", "create", "--name", "A", "--seats", "-1"], 2, ["--seats", "-1", "seats"], id="seats"
    ),
    pytest.param(
        {"SCIMLEDGER_PUBLIC_URL": "scim.example.com"},
        ["serve"],
        2,
        ["SCIMLEDGER_PUBLIC_URL"],
        id="public-url",
    ),
    pytest.param(
        {"SCIMLEDGER_RATE_LIMIT": "fast"}, ["serve"], 2, ["SCIMLEDGER_RATE_LIMIT", "'fast'"], id="rate"
    ),
    pytest.param(
        {"SCIMLEDGER_SMTP_URL": "mail.example.com"}, ["serve"], 2, ["SCIMLEDGER_SMTP_URL"], id="smtp-url"
    ),
    pytest.param(
        {"SCIMLEDGER_DNS_SERVERS": "dns.example.com"}, ["serve"], 2, ["SCIMLEDGER_DNS_SERVERS"], id="dns"
    ),
    pytest.param(
        {},
        ["serve", "--ssl-certfile", "/nonexistent/cert.pem"],
        2,
        ["--ssl-certfile", "/nonexistent"],
        id="tls",
    ),
]


@pytest.mark.parametrize(("env", "args", "code", "named"), CASES)
def test_a_bad_setting_is_one_line_naming_it(
    env: dict[str, str], args: list[str], code: int, named: list[str]
) -> None:
    home = open_dir("scimledger-config-")
    done = run(isolated_env(SCIMLEDGER_HOME=str(home), **env), *args, cwd=home)
    assert done.returncode == code, done.stderr
    lines = done.stderr.splitlines()
    assert len(lines) == 1, done.stderr
    assert lines[0].startswith("error: ") and all(word in lines[0] for word in named), lines[0]
    assert done.stdout == ""
    assert not (home / "pgdata").exists()  # nothing was started or created


def test_a_tls_key_that_is_not_a_key_is_one_line(tmp_path: Path) -> None:
    bogus = tmp_path / "cert.pem"
    bogus.write_text("not a certificate\n")
    home = open_dir("scimledger-config-")
    done = run(isolated_env(SCIMLEDGER_HOME=str(home)), "serve", "--ssl-certfile", str(bogus))
    assert done.returncode == 2
    [line] = done.stderr.splitlines()
    assert "--ssl-certfile" in line and "PEM" in line


def test_a_port_in_use_with_workers_is_one_line(database_url: str) -> None:
    """``--workers 2`` binds the socket itself: a port that is taken is named, not a traceback."""
    with socket.socket() as taken:
        taken.bind(("127.0.0.1", 0))
        taken.listen()
        port = taken.getsockname()[1]
        home = open_dir("scimledger-config-")
        env = isolated_env(SCIMLEDGER_HOME=str(home), DATABASE_URL=database_url)
        done = run(env, "serve", "--workers", "2", "--port", str(port))
    assert done.returncode == 2
    assert "Traceback" not in done.stderr
    [line] = [ln for ln in done.stderr.splitlines() if ln.startswith("error: ")]
    assert line.startswith(f"error: --host/--port: cannot listen on 127.0.0.1:{port}")
