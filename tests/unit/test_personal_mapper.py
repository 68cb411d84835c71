"""Personal fields sealed by the mapper (issue 11; src/scimledger/store/mapper.py, domain/personal.py).

No database: a KeyRing of the test's own holds the keys. What is checked is the stored bytes (what the log
and its hash chain keep) and what decodes back from them, with the key, without it, and for old events.
"""

from __future__ import annotations

from typing import Any
from uuid import UUID, uuid4

import orjson
import pytest
from eventsourcing.domain import Snapshot
from eventsourcing.persistence import Mapper, StoredEvent

from scimledger.domain import Member, Membership, UniquenessClaim
from scimledger.domain.base import replay
from scimledger.domain.personal import ERASED, is_erased
from scimledger.store.keys import KeyNotLoaded, KeyRing, SealBroken, is_envelope
from scimledger.store.mapper import OrjsonTranscoder, PersonalMapper

PROFILE = {
    "userName": "ada@example.com",
    "name": {"givenName": "Ada", "familyName": "Lovelace"},
    "emails": [{"value": "ada.lovelace@example.com", "primary": True}],
    "phoneNumbers": [{"value": "+44 20 7946 0000"}],
    "addresses": [{"streetAddress": "12 St James's Square", "locality": "London"}],
    "externalId": "okta-ada",
}
SECRETS = ("ada@example.com", "Ada", "Lovelace", "ada.lovelace", "7946", "James", "okta-ada")


@pytest.fixture
def ring() -> KeyRing:
    return KeyRing()


@pytest.fixture
def mapper(ring: KeyRing) -> PersonalMapper:
    return PersonalMapper(OrjsonTranscoder(), ring)


def new_member(status: str = "active") -> Member:
    return Member.start(
        Member.Created,
        uuid4(),
        workspace_id=str(uuid4()),
        person_id=str(uuid4()),
        user_name="ada@example.com",
        profile=PROFILE,
        role="admin",
        managed_by="idp",
        status=status,
    )


def stored_of(mapper: PersonalMapper, *aggregates: Any) -> list[StoredEvent]:
    return [mapper.to_stored_event(e) for a in aggregates for e in a.collect_events()]


def without_ciphertexts(value: Any) -> Any:
    """``value`` with each sealed field's ciphertext blanked: base64 may spell a short secret ("Ada") by
    chance, which is not a trace of it."""
    if is_envelope(value):
        return {**value, "$enc": ""}
    if isinstance(value, dict):
        return {k: without_ciphertexts(v) for k, v in value.items()}
    if isinstance(value, list):
        return [without_ciphertexts(v) for v in value]
    return value


def assert_no_plaintext(state: bytes) -> None:
    shown = orjson.dumps(without_ciphertexts(orjson.loads(state)))
    assert not [s for s in SECRETS if s.encode() in shown], state


def test_personal_fields_are_stored_sealed_and_the_rest_in_clear(mapper: PersonalMapper) -> None:
    member = new_member()
    member.change_profile("ada.l@example.com", {**PROFILE, "userName": "ada.l@example.com"})
    member.suspend(reason="deactivated by the identity provider")
    member.revoke_sessions(reason="deactivated by the identity provider")
    for record in stored_of(mapper, member):
        assert_no_plaintext(record.state)
    created = orjson.loads(stored_of(mapper, new_member())[0].state)
    assert is_envelope(created["user_name"]) and is_envelope(created["profile"])
    assert (created["role"], created["status"], created["managed_by"]) == ("admin", "active", "idp")
    assert UUID(created["person_id"]) and UUID(created["workspace_id"])


def test_sealed_fields_decode_back_with_their_key(mapper: PersonalMapper) -> None:
    member = new_member()
    member.change_profile("ada.l@example.com", {**PROFILE, "userName": "ada.l@example.com"})
    decoded = [mapper.to_domain_event(s) for s in stored_of(mapper, member)]
    assert (decoded[0].user_name, decoded[0].profile) == ("ada@example.com", PROFILE)
    again = replay(decoded)
    assert (again.user_name, again.profile["userName"], again.role) == (
        "ada.l@example.com",
        "ada.l@example.com",
        "admin",
    )


def test_a_destroyed_key_decodes_to_erased_and_the_member_still_replays(
    mapper: PersonalMapper, ring: KeyRing
) -> None:
    member = new_member(status="invited")
    member.deprovision()
    member.erase("asked by email", {"kind": "admin", "id": "k", "name": "admin key"})
    stored = stored_of(mapper, member)
    ring.forget(str(member.id))
    decoded = [mapper.to_domain_event(s) for s in stored]
    assert decoded[0].user_name == "[erased]" and is_erased(decoded[0].user_name)
    assert decoded[0].profile == {} and is_erased(decoded[0].profile)
    again = replay(decoded)
    assert (again.status, again.role, again.erased, again.user_name) == (
        "deprovisioned",
        "admin",
        True,
        ERASED,
    )
    assert orjson.loads(stored[-1].state)["reason"] == "asked by email"  # who and why stay in clear


def test_a_user_name_that_reads_erased_is_not_an_erased_field(mapper: PersonalMapper) -> None:
    member = Member.start(
        Member.Created,
        uuid4(),
        workspace_id="w",
        person_id="p",
        user_name="[erased]",
        profile={"userName": "[erased]"},
        role="member",
        managed_by="idp",
        status="active",
    )
    decoded = mapper.to_domain_event(stored_of(mapper, member)[0])
    assert decoded.user_name == "[erased]" and not is_erased(decoded.user_name)


def test_an_unloaded_key_is_an_error_never_an_erasure(mapper: PersonalMapper) -> None:
    stored = stored_of(mapper, new_member())[0]
    other = PersonalMapper(OrjsonTranscoder(), KeyRing())  # another process: nothing loaded
    with pytest.raises(KeyNotLoaded):
        other.to_domain_event(stored)


def test_events_recorded_in_clear_read_as_before(mapper: PersonalMapper) -> None:
    """Logs written before encryption: no envelope, the field is read as it was."""
    plain = Mapper(transcoder=OrjsonTranscoder())
    member = new_member()
    old = [plain.to_stored_event(e) for e in member.collect_events()]
    assert b"ada@example.com" in old[0].state
    decoded = mapper.to_domain_event(old[0])
    assert (decoded.user_name, decoded.profile) == ("ada@example.com", PROFILE)


def test_a_ciphertext_moved_to_another_member_or_field_does_not_open(mapper: PersonalMapper) -> None:
    first, second = new_member(), new_member()
    a, b = (orjson.loads(stored_of(mapper, m)[0].state) for m in (first, second))
    swapped = {**b, "user_name": {**a["user_name"], "k": b["user_name"]["k"]}}
    with pytest.raises(SealBroken):
        mapper.to_domain_event(StoredEvent(second.id, 1, "MemberProvisioned", orjson.dumps(swapped)))
    moved = {**a, "user_name": a["profile"]}
    with pytest.raises(SealBroken):
        mapper.to_domain_event(StoredEvent(first.id, 1, "MemberProvisioned", orjson.dumps(moved)))


def test_a_group_display_name_is_sealed_with_the_member_key(mapper: PersonalMapper, ring: KeyRing) -> None:
    member = new_member()
    stored_of(mapper, member)  # the member's key is made with its creation
    team_id = uuid4()
    added = Membership.add(None, str(uuid4()), str(team_id), str(member.id), display="Ada Lovelace")
    record = stored_of(mapper, added)[0]
    payload = orjson.loads(record.state)
    assert is_envelope(payload["display"]) and payload["display"]["k"] == str(member.id)
    assert (payload["team_id"], payload["member_id"]) == (str(team_id), str(member.id))
    ring.forget(str(member.id))
    assert mapper.to_domain_event(record).display == "[erased]"


def test_user_name_claims_are_sealed_team_name_claims_are_not(mapper: PersonalMapper) -> None:
    member = new_member()
    stored_of(mapper, member)
    ws = uuid4()
    user_claim = UniquenessClaim.take(None, ws, "userName", "ada@example.com", str(member.id))
    team_claim = UniquenessClaim.take(None, ws, "teamName", "Engineering", str(uuid4()))
    sealed, clear = (orjson.loads(stored_of(mapper, c)[0].state) for c in (user_claim, team_claim))
    assert is_envelope(sealed["value"]) and sealed["kind"] == "userName"
    assert clear["value"] == "Engineering"


def test_snapshots_of_a_member_are_sealed(mapper: PersonalMapper, ring: KeyRing) -> None:
    member = new_member()
    stored_of(mapper, member)
    snapshot = mapper.to_stored_event(Snapshot.take(member))
    assert_no_plaintext(snapshot.state)
    restored = mapper.to_domain_event(snapshot).mutate(None)
    assert (restored.user_name, restored.profile) == ("ada@example.com", PROFILE)
    ring.forget(str(member.id))
    assert mapper.to_domain_event(snapshot).mutate(None).user_name == "[erased]"
