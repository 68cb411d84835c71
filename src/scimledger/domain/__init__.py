"""The domain model: aggregates, their events and the rules they enforce. No I/O, no HTTP, no SCIM."""

from scimledger.domain.claim import UniquenessClaim
from scimledger.domain.member import Member
from scimledger.domain.person import Person
from scimledger.domain.team import Membership, Team
from scimledger.domain.token import AdminKey, Token
from scimledger.domain.workspace import Workspace

AGGREGATES = (Workspace, Person, Member, Team, Membership, Token, AdminKey, UniquenessClaim)

__all__ = [
    "AGGREGATES",
    "AdminKey",
    "Member",
    "Membership",
    "Person",
    "Team",
    "Token",
    "UniquenessClaim",
    "Workspace",
]
