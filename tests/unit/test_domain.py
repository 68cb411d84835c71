"""Domain rules without I/O: the aggregates decide, events record."""

from __future__ import annotations

from uuid import uuid4

import pytest

from scimledger.domain import Member, Membership, Person, UniquenessClaim, Workspace
from scimledger.domain.base import replay
from scimledger.domain.errors import AlreadyTaken, InvalidCommand, LastAdmin, NoFreeSeat
from scimledger.domain.member import role_from_values


def topics(aggregate: object) -> list[str]:
    return [type(e).TOPIC for e in aggregate.collect_events()]  # type: ignore[attr-defined]


@pytest.mark.parametrize(
    ("values", "role"),
    [([], "member"), (["Admin"], "admin"), (["owner"], "member"), (["member", "ADMIN"], "admin")],
)
def test_role_from_roles_values(values: list[str], role: str) -> None:
    assert role_from_values(values) == role


def test_no_free_seat_refuses_without_automatic_assignment() -> None:
    ws = Workspace(name="w")
    ws.add_seats(1)
    ws.assign_seat("m1")
    with pytest.raises(NoFreeSeat):
        ws.assign_seat("m2")


def test_automatic_assignment_buys_a_seat_then_assigns_it() -> None:
    ws = Workspace(name="w")
    ws.set_automatic_seat_assignment(True)
    ws.collect_events()
    ws.assign_seat("m1")
    assert topics(ws) == ["SeatAdded", "SeatAssigned"]
    assert (ws.seats_total, ws.seats_assigned) == (1, 1)


def test_last_admin_cannot_be_revoked() -> None:
    ws = Workspace(name="w")
    ws.grant_admin("a")
    ws.grant_admin("b")
    ws.revoke_admin("a")
    with pytest.raises(LastAdmin):
        ws.revoke_admin("b")


def test_domains_are_normalised_and_verified() -> None:
    ws = Workspace(name="w")
    ws.add_domain("Example.COM.")
    assert not ws.is_verified_email("x@example.com")
    ws.verify_domain_by_operator("example.com")
    assert ws.is_verified_email("x@EXAMPLE.com")
    with pytest.raises(InvalidCommand):
        ws.add_domain("not a domain")


def test_claim_held_by_another_owner_is_taken() -> None:
    ws = uuid4()
    claim = UniquenessClaim.take(None, ws, "userName", "A@x.com", "m1")
    assert UniquenessClaim.id_for(ws, "userName", "a@X.com") == claim.id
    with pytest.raises(AlreadyTaken):
        UniquenessClaim.take(claim, ws, "userName", "a@x.com", "m2")


def test_released_claim_is_reopened_with_the_same_event_type() -> None:
    ws = uuid4()
    claim = UniquenessClaim.take(None, ws, "externalId", "e1", "m1")
    claim.release()
    again = UniquenessClaim.take(claim, ws, "externalId", "e1", "m2")
    events = again.collect_events()
    assert [type(e).TOPIC for e in events] == ["UniquenessClaimed", "UniquenessReleased", "UniquenessClaimed"]
    assert replay(events).owner_id == "m2"


def test_membership_add_is_idempotent_and_readd_after_remove() -> None:
    team, member = str(uuid4()), str(uuid4())
    first = Membership.add(None, "w", team, member)
    assert Membership.add(first, "w", team, member) is first
    first.remove()
    again = Membership.add(first, "w", team, member)
    assert [type(e).TOPIC for e in again.collect_events()] == [
        "TeamMemberAdded",
        "TeamMemberRemoved",
        "TeamMemberAdded",
    ]
    assert again.present and again.version == 3


def test_member_change_without_difference_records_nothing() -> None:
    member = Member.start(
        Member.Created,
        uuid4(),
        workspace_id="w",
        person_id="p",
        user_name="u",
        profile={"a": 1},
        role="member",
        managed_by="idp",
        status="active",
    )
    member.collect_events()
    assert member.change_profile("u", {"a": 1}) is False
    assert member.collect_events() == []


def test_person_id_is_deterministic_by_normalised_email() -> None:
    assert Person.register(" Ada@Example.com ").id == Person.id_for("ada@example.com")
