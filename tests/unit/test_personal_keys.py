"""The master key and what is derived from it (issue 11; src/scimledger/store/keys.py, domain/ids.py)."""

from __future__ import annotations

import base64
import stat
from collections.abc import Iterator
from pathlib import Path
from uuid import UUID, uuid4, uuid5

import pytest

from scimledger.domain import ids
from scimledger.store import keys


def test_the_master_key_file_is_made_on_first_use_private_and_then_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    first = keys.master({"SCIMLEDGER_HOME": str(home)})
    path = home / keys.MASTER_FILE
    assert stat.S_IMODE(path.stat().st_mode) == 0o600
    assert len(base64.urlsafe_b64decode(path.read_text().strip())) == 32
    wrapped = first.wrap("m", b"k" * 32)
    keys._master.cache_clear()  # another process starting on the same home reads the same key
    assert keys.master({"SCIMLEDGER_HOME": str(home)}).unwrap("m", wrapped) == b"k" * 32


def test_the_environment_variable_wins_and_no_file_is_made(tmp_path: Path) -> None:
    secret = keys.new_secret_text()
    env = {keys.MASTER_ENV: secret, "SCIMLEDGER_HOME": str(tmp_path)}
    wrapped = keys.master(env).wrap("m", b"k" * 32)
    assert not (tmp_path / keys.MASTER_FILE).exists()
    assert keys.Master.from_secret(keys.parse_secret(secret, "x")).unwrap("m", wrapped) == b"k" * 32


@pytest.mark.parametrize("bad", ["not base64 at all!", base64.b64encode(b"short").decode()])
def test_a_malformed_master_key_is_refused_without_echoing_it(bad: str) -> None:
    with pytest.raises(keys.MasterKeyUnavailable) as refused:
        keys.master({keys.MASTER_ENV: bad})
    assert keys.MASTER_ENV in str(refused.value) and bad not in str(refused.value)


def test_a_data_key_wrapped_by_another_master_key_is_an_error() -> None:
    one, other = (keys.Master.from_secret(keys.parse_secret(keys.new_secret_text(), "x")) for _ in range(2))
    wrapped = one.wrap("member", b"k" * 32)
    with pytest.raises(keys.WrongMasterKey):
        other.unwrap("member", wrapped)
    with pytest.raises(keys.WrongMasterKey):  # a wrapped key is bound to its member
        one.unwrap("another member", wrapped)


@pytest.fixture
def other_master() -> Iterator[keys.Master]:
    """The pseudonyms of another installation (another master key), restored afterwards."""
    master = keys.Master.from_secret(keys.parse_secret(keys.new_secret_text(), "x"))
    ids.use_keyed_hash(master.keyed_hash)
    try:
        yield master
    finally:
        ids.use_keyed_hash(lambda data: keys.master().keyed_hash(data))


def test_a_person_id_is_a_keyed_hash_of_the_normalised_email() -> None:
    found = ids.person_id(" Ada@Example.com ")
    assert found == ids.person_id("ada@example.com")
    assert found.version == 8
    assert found != uuid5(ids.NAMESPACE, "person:ada@example.com")  # the old, guessable derivation


def test_whoever_holds_the_log_but_not_the_master_key_cannot_test_a_guess(other_master: keys.Master) -> None:
    here = UUID(bytes=keys.master().keyed_hash(b"person:ada@example.com")[:16])
    elsewhere = ids.person_id("ada@example.com")
    assert elsewhere.bytes[:6] != here.bytes[:6]


def test_user_name_and_external_id_claims_are_keyed_team_names_are_not() -> None:
    ws = uuid4()
    assert ids.claim_id(ws, "userName", "ada@example.com") != uuid5(
        ids.NAMESPACE, f"claim:{ws}:userName:ada@example.com"
    )
    assert ids.claim_id(ws, "externalId", "okta-ada").version == 8
    assert ids.claim_id(ws, "teamName", "engineering") == uuid5(
        ids.NAMESPACE, f"claim:{ws}:teamName:engineering"
    )


def test_no_master_key_is_made_where_no_command_would_look_for_it(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.delenv("SCIMLEDGER_HOME", raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(tmp_path / "config"))
    with pytest.raises(keys.MasterKeyUnavailable, match="no master key"):
        keys.master({})
    assert list(tmp_path.iterdir()) == []
