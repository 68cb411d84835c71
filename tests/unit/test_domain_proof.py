"""Issue 8, defect 1: a domain is verified only with proof (the workspace's DNS TXT challenge) or on an
operator's word, each recorded with its method; events recorded before issue 8 still replay."""

from __future__ import annotations

from dataclasses import replace
from typing import Any

import orjson
import pytest

from scimledger.dns_proof import BadServerList, parse_servers
from scimledger.domain import Workspace
from scimledger.domain.base import replay
from scimledger.domain.errors import DomainNotProven, InvalidCommand
from scimledger.domain.workspace import challenge_record, checked_domain
from scimledger.store.mapper import build_mapper


def added(domain: str = "acme.test") -> Workspace:
    ws = Workspace(name="w")
    ws.add_domain(domain)
    return ws


def last_event(ws: Workspace) -> Any:
    return ws.collect_events()[-1]


def test_adding_a_domain_issues_a_random_challenge_of_this_workspace() -> None:
    one, two = added(), added()
    token = one.challenge_for("ACME.test.")
    assert token and len(token) >= 32
    assert token != two.challenge_for("acme.test")
    assert [type(e).TOPIC for e in one.collect_events()][-2:] == ["DomainAdded", "DomainChallengeIssued"]


def test_adding_the_domain_again_keeps_its_challenge_and_records_nothing() -> None:
    ws = added()
    token = ws.challenge_for("acme.test")
    ws.collect_events()
    ws.add_domain("Acme.Test")
    assert ws.collect_events() == []
    assert ws.challenge_for("acme.test") == token


def test_the_workspaces_own_token_in_dns_verifies_with_method_and_record() -> None:
    ws = added()
    token = ws.challenge_for("acme.test")
    assert token is not None
    ws.verify_domain_by_dns("acme.test", ["unrelated", token])
    assert ws.is_verified_email("ada@acme.test")
    verified = last_event(ws)
    assert (type(verified).TOPIC, verified.method, verified.record) == (
        "DomainVerified",
        "dns",
        "_scimledger-challenge.acme.test",
    )
    assert ws.challenge_for("acme.test") is None  # nothing left to prove


def test_another_workspaces_token_does_not_verify_and_the_error_names_the_record() -> None:
    ws, other = added(), added()
    foreign = other.challenge_for("acme.test")
    assert foreign is not None
    with pytest.raises(DomainNotProven) as refused:
        ws.verify_domain_by_dns("acme.test", [foreign])
    assert "_scimledger-challenge.acme.test" in refused.value.message
    assert refused.value.code == "domain_not_proven"
    assert not ws.is_verified_email("ada@acme.test")


def test_why_nothing_was_found_is_in_the_error() -> None:
    with pytest.raises(DomainNotProven, match="that name does not exist"):
        added().verify_domain_by_dns("acme.test", [], "that name does not exist")


def test_verifying_a_domain_never_added_is_an_invalid_command() -> None:
    with pytest.raises(InvalidCommand, match="has not been added"):
        Workspace(name="w").verify_domain_by_dns("acme.test", [])


def test_an_operators_word_is_recorded_as_such() -> None:
    ws = added()
    ws.verify_domain_by_operator("acme.test")
    verified = last_event(ws)
    assert (verified.method, verified.record) == ("operator", None)
    ws.verify_domain_by_operator("acme.test")
    assert ws.collect_events() == []  # already verified: nothing more


def test_workspace_creation_verifies_on_the_operators_word_without_a_challenge() -> None:
    ws = Workspace(name="w")
    ws.add_verified_domain("Example.COM")
    events = ws.collect_events()
    assert [type(e).TOPIC for e in events] == ["WorkspaceCreated", "DomainAdded", "DomainVerified"]
    assert events[-1].method == "operator"


@pytest.mark.parametrize(
    "domain", ["example.com", "a-b.example.co.uk", "xn--bcher-kva.de", "bücher.de", "EXAMPLE.com."]
)
def test_host_names_are_domains(domain: str) -> None:
    assert checked_domain(domain) == domain.strip().lower().rstrip(".")


@pytest.mark.parametrize(
    "domain",
    ["localhost", "not a domain", "a@b.com", "-a.com", "a-.com", "a..com", "x_y.com", f"{'a' * 64}.com", ""],
)
def test_other_names_are_refused(domain: str) -> None:
    with pytest.raises(InvalidCommand):
        checked_domain(domain)


def test_the_challenge_record_is_under_the_domain() -> None:
    assert challenge_record("Acme.Test.") == "_scimledger-challenge.acme.test"


# --- logs recorded before issue 8 -----------------------------------------------------------------------
def without(stored: Any, *fields: str) -> Any:
    """A stored event as it was written before ``fields`` existed."""
    state = {k: v for k, v in orjson.loads(stored.state).items() if k not in fields}
    return replace(stored, state=orjson.dumps(state))


def test_a_domain_verified_before_issue_8_still_replays_verified() -> None:
    mapper = build_mapper()
    ws = Workspace(name="w")
    ws._add_domain(domain="old.test")  # an old log: DomainAdded without a challenge...
    ws._verify_domain(domain="old.test", method="dns", record="x")  # ...and DomainVerified without a method
    stored = [mapper.to_stored_event(e) for e in ws.collect_events()]
    stored[-1] = without(stored[-1], "method", "record")
    replayed = replay(mapper.to_domain_event(s) for s in stored)
    assert replayed.is_verified_email("x@old.test")
    assert replayed.challenges == {}


def test_a_domain_added_before_issue_8_gets_a_challenge_when_added_again() -> None:
    ws = Workspace(name="w")
    ws._add_domain(domain="old.test")
    assert ws.challenge_for("old.test") is None
    ws.collect_events()
    ws.add_domain("old.test")
    assert [type(e).TOPIC for e in ws.collect_events()] == ["DomainChallengeIssued"]
    assert ws.challenge_for("old.test")


def test_a_snapshot_taken_before_issue_8_has_no_challenges_yet() -> None:
    ws = added()
    del ws.__dict__["_challenges"]
    assert ws.challenges == {}
    ws.add_domain("acme.test")  # gets a challenge again: the old state had none
    assert ws.challenge_for("acme.test")


# --- SCIMLEDGER_DNS_SERVERS -------------------------------------------------------------------------------
def test_server_lists_parse() -> None:
    assert parse_servers("127.0.0.1:5353, [::1]:53,10.0.0.2") == [
        ("127.0.0.1", 5353),
        ("::1", 53),
        ("10.0.0.2", 53),
    ]
    assert parse_servers("::1") == [("::1", 53)]


@pytest.mark.parametrize("text", ["", "dns.example:53", "127.0.0.1:0", "127.0.0.1:x", "1.2.3.4:70000"])
def test_bad_server_lists_are_refused(text: str) -> None:
    with pytest.raises(BadServerList):
        parse_servers(text)
