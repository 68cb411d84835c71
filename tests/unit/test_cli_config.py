"""Where the data directory is, what counts as a bad setting, and which SMTP answers drop a message
(issue 10; README "CLI", "Notifications"). No I/O beyond temporary directories."""

from __future__ import annotations

import smtplib
from pathlib import Path

import pytest

from scimledger.config import ConfigError, check_database_url, check_public_url, locate_home, record_home
from scimledger.notifications import refusal


def test_serve_uses_the_current_directory_and_records_it(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    found = locate_home(serving=True, environ=env, cwd=tmp_path / "project")
    assert found.path == tmp_path / "project" / ".scimledger" and found.how == "default"
    assert record_home(found.path, env) is True
    assert record_home(found.path, env) is False  # unchanged
    assert (tmp_path / "config" / "scimledger" / "home").read_text() == f"{found.path}\n"


def test_other_commands_look_in_the_current_directory_then_at_the_record(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    recorded = tmp_path / "project" / ".scimledger"
    recorded.mkdir(parents=True)
    record_home(recorded, env)
    elsewhere = tmp_path / "elsewhere"
    assert locate_home(serving=False, environ=env, cwd=elsewhere).path == recorded
    (elsewhere / ".scimledger").mkdir(parents=True)
    assert locate_home(serving=False, environ=env, cwd=elsewhere).path == elsewhere / ".scimledger"
    explicit = {**env, "SCIMLEDGER_HOME": "relative/home"}
    assert locate_home(serving=False, environ=explicit, cwd=elsewhere).path == Path.cwd() / "relative/home"


def test_a_missing_home_is_reported_with_every_place_looked_at(tmp_path: Path) -> None:
    env = {"XDG_CONFIG_HOME": str(tmp_path / "config")}
    record_home(tmp_path / "gone", env)
    found = locate_home(serving=False, environ=env, cwd=tmp_path)
    assert not found.found
    assert str(tmp_path / ".scimledger") in found.looked and str(tmp_path / "gone") in found.looked


def test_a_relative_xdg_config_home_is_ignored(tmp_path: Path) -> None:
    """XDG Base Directory: a relative value is invalid; ~/.config is used instead."""
    found = locate_home(serving=False, environ={"XDG_CONFIG_HOME": "cfg"}, cwd=tmp_path)
    assert str(Path.home() / ".config" / "scimledger" / "home") in found.looked


@pytest.mark.parametrize("url", ["notaurl", "mysql://h/db", "postgresql://h:99999/db", "postgresql://h:0/db"])
def test_database_urls_that_are_not_postgresql_are_refused(url: str) -> None:
    with pytest.raises(ConfigError) as refused:
        check_database_url("DATABASE_URL", url)
    assert refused.value.setting == "DATABASE_URL"


@pytest.mark.parametrize("url", ["scim.example.com", "ftp://x", "https://x/?a=1", "https://"])
def test_public_urls_must_be_absolute_http_bases(url: str) -> None:
    with pytest.raises(ConfigError):
        check_public_url(url)


def test_a_public_url_loses_its_trailing_slash() -> None:
    assert check_public_url("https://scim.example.com/base/") == "https://scim.example.com/base"


def test_only_a_5xx_to_rcpt_or_data_drops_the_message() -> None:
    """RFC 5321 §4.2.1: 5yz is permanent. To RCPT or DATA it is this message's; to MAIL FROM or the
    connection it would refuse every message alike (a setting to fix): retried, not dropped."""
    assert refusal(smtplib.SMTPRecipientsRefused({"a@x": (550, b"no such user")})) == "550 no such user"
    assert refusal(smtplib.SMTPDataError(554, b"spam")) == "554 spam"
    assert refusal(smtplib.SMTPDataError(451, b"later")) is None
    assert refusal(smtplib.SMTPRecipientsRefused({"a@x": (450, b"busy")})) is None
    assert refusal(smtplib.SMTPSenderRefused(553, b"bad sender", "s@x")) is None
    assert refusal(smtplib.SMTPConnectError(554, b"no service")) is None
