"""The command line documents itself (issue 10; README "CLI"): ``scimledger --version``, and every
subcommand's ``--help`` describes each option with its default (or says it is required) and lists the
environment variables the command reads; ``serve --help`` lists every variable the code reads."""

from __future__ import annotations

import argparse
import re
from importlib.metadata import version
from pathlib import Path

import pytest

from scimledger import cli
from tests.e2e.cli_processes import isolated_env, run

SRC = Path(__file__).resolve().parents[2]
INTERNAL = {"SCIMLEDGER_WORKERS"}  # set by serve for its workers, not by people


def commands(parser: argparse.ArgumentParser, path: tuple[str, ...] = ()) -> list[tuple[str, ...]]:
    """The path of every command and command group under ``parser``."""
    found = [path]
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, child in action.choices.items():
                found += commands(child, (*path, name))
    return found


def parser_at(path: tuple[str, ...]) -> argparse.ArgumentParser:
    parser = cli.parser()
    for name in path:
        [sub] = [a for a in parser._actions if isinstance(a, argparse._SubParsersAction)]
        parser = sub.choices[name]
    return parser


def help_text(path: tuple[str, ...], capsys: pytest.CaptureFixture[str]) -> str:
    with pytest.raises(SystemExit) as done:
        cli.main([*path, "--help"])
    assert done.value.code == 0
    return " ".join(capsys.readouterr().out.split())  # argparse wraps lines: compare with spaces collapsed


PATHS = commands(cli.parser())


def test_every_command_is_walked() -> None:
    leaves = {" ".join(p) for p in PATHS}
    assert {
        "serve",
        "migrate",
        "audit verify",
        "admin-key create",
        "admin-key revoke",
        "domain verify",
    } <= leaves


@pytest.mark.parametrize("path", PATHS, ids=lambda p: " ".join(p) or "scimledger")
def test_each_option_is_described_with_its_default(
    path: tuple[str, ...], capsys: pytest.CaptureFixture[str]
) -> None:
    text = help_text(path, capsys)
    for action in parser_at(path)._actions:
        if isinstance(action, argparse._HelpAction | argparse._VersionAction | argparse._SubParsersAction):
            continue
        name = "/".join(action.option_strings)
        assert action.help, f"{name} has no help"
        assert action.required or "default" in action.help, f"{name}: no default in {action.help!r}"
        assert "".join(action.help.split()) in "".join(text.split()), name  # wrapped at spaces or hyphens
    assert "environment:" in text
    assert "SCIMLEDGER_HOME" in text or path == ("audit", "verify")


def test_serve_help_lists_every_variable_the_code_reads(capsys: pytest.CaptureFixture[str]) -> None:
    read = set()
    for folder in ("src/scimledger", "projections"):
        for source in (SRC / folder).rglob("*.py"):
            read |= set(re.findall(r'"(SCIMLEDGER_[A-Z_]+)"', source.read_text()))
    text = help_text(("serve",), capsys)
    missing = sorted(name for name in read - INTERNAL if name not in text)
    assert not missing, f"serve --help does not mention {missing}"
    assert "DATABASE_URL" in text and "FORWARDED_ALLOW_IPS" in text


def test_version_is_the_installed_package_version() -> None:
    done = run(isolated_env(), "--version")
    assert done.returncode == 0
    assert done.stdout.strip() == f"scimledger {version('scimledger')}"
