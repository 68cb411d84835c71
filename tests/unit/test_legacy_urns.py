"""Legacy schema URNs that IdPs still send (OneLogin's SCIM templates: ``urn:scim:schemas:core:2.0``,
``urn:scim:schemas:extension:enterprise:2.0``, and the SCIM 1.1 ``...:1.0`` ones) are read as the RFC 7643
URNs they stand for: in ``schemas``, as the extension's key, and as attribute-path prefixes (PATCH paths,
filters, ``attributes``)."""

from __future__ import annotations

import pytest

from scimledger.scim.attributes import select_attributes
from scimledger.scim.errors import InvalidSyntax
from scimledger.scim.patch import apply_patch
from scimledger.scim.paths import AttrPath, parse_attr_path
from scimledger.scim.schemas import ENTERPRISE_USER_URN, GROUP_URN, USER_URN, canonical_path, resolve_urn
from scimledger.scim.users import group_from_body, user_from_body


@pytest.mark.parametrize(
    ("resource_type", "urn", "expected"),
    [
        ("User", "urn:scim:schemas:core:2.0", USER_URN),
        ("User", "urn:scim:schemas:core:2.0:User", USER_URN),
        ("User", "URN:SCIM:SCHEMAS:CORE:2.0:user", USER_URN),
        ("User", "urn:scim:schemas:core:1.0", USER_URN),
        ("Group", "urn:scim:schemas:core:2.0", GROUP_URN),
        ("Group", "urn:scim:schemas:core:2.0:Group", GROUP_URN),
        ("Group", "urn:scim:schemas:core:1.0", GROUP_URN),
        ("User", "urn:scim:schemas:extension:enterprise:2.0", ENTERPRISE_USER_URN),
        ("User", "urn:scim:schemas:extension:enterprise:2.0:User", ENTERPRISE_USER_URN),
        ("User", "urn:scim:schemas:extension:enterprise:1.0", ENTERPRISE_USER_URN),
        ("User", USER_URN, USER_URN),
        ("User", "urn:example:other", "urn:example:other"),  # not ours: unchanged
        ("Group", "urn:scim:schemas:core:2.0:User", "urn:scim:schemas:core:2.0:User"),  # not a Group's
        ("Group", "urn:scim:schemas:extension:enterprise:2.0", "urn:scim:schemas:extension:enterprise:2.0"),
    ],
)
def test_resolve_urn(resource_type: str, urn: str, expected: str) -> None:
    assert resolve_urn(resource_type, urn) == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("urn:scim:schemas:core:2.0:userName", AttrPath(None, "userName")),
        ("urn:scim:schemas:core:2.0:User:name.givenName", AttrPath(None, "name", "givenName")),
        ("urn:scim:schemas:extension:enterprise:2.0:department", AttrPath(ENTERPRISE_USER_URN, "department")),
        (
            "urn:scim:schemas:extension:enterprise:2.0:User:manager.value",
            AttrPath(ENTERPRISE_USER_URN, "manager", "value"),
        ),
    ],
)
def test_a_legacy_prefix_names_the_same_attribute(text: str, expected: AttrPath) -> None:
    assert canonical_path("User", parse_attr_path(text)) == expected


def test_a_onelogin_put_body_with_legacy_urns_is_read_as_the_rfc_one() -> None:
    body = {
        "schemas": ["urn:scim:schemas:core:2.0", "urn:scim:schemas:extension:enterprise:2.0"],
        "userName": "ada@example.com",
        "name": {"givenName": "Ada", "familyName": "Lovelace"},
        "urn:scim:schemas:extension:enterprise:2.0": {"department": "Engines"},
    }
    user = user_from_body(body)
    assert user.profile[ENTERPRISE_USER_URN] == {"department": "Engines"}
    assert "urn:scim:schemas:extension:enterprise:2.0" not in user.profile
    assert user.profile["name"] == {"givenName": "Ada", "familyName": "Lovelace"}


def test_a_group_body_with_the_legacy_core_urn() -> None:
    group = group_from_body({"schemas": ["urn:scim:schemas:core:2.0"], "displayName": "Ops"})
    assert group.display_name == "Ops"


def test_schemas_naming_no_core_schema_at_all_is_still_refused() -> None:
    with pytest.raises(InvalidSyntax):
        user_from_body({"schemas": ["urn:example:other"], "userName": "ada@example.com"})
    with pytest.raises(InvalidSyntax):  # a User's legacy URN is not a Group's
        group_from_body({"schemas": ["urn:scim:schemas:core:2.0:User"], "displayName": "Ops"})


def test_patch_paths_with_legacy_prefixes() -> None:
    user = {"schemas": [USER_URN], "userName": "ada@example.com"}
    patched = apply_patch(
        user,
        [
            {"op": "add", "path": "urn:scim:schemas:extension:enterprise:2.0:department", "value": "R&D"},
            {"op": "replace", "path": "urn:scim:schemas:core:2.0:displayName", "value": "Ada"},
            {"op": "add", "path": "urn:scim:schemas:extension:enterprise:1.0", "value": {"division": "X"}},
        ],
        "User",
    )
    assert patched[ENTERPRISE_USER_URN] == {"department": "R&D", "division": "X"}
    assert patched["displayName"] == "Ada"
    assert patched["schemas"] == [USER_URN, ENTERPRISE_USER_URN]
    assert "urn:scim:schemas:extension:enterprise:1.0" not in patched


def test_a_path_less_patch_value_keyed_by_a_legacy_extension_urn() -> None:
    user = {"schemas": [USER_URN], "userName": "ada@example.com"}
    patched = apply_patch(
        user,
        [{"op": "replace", "value": {"urn:scim:schemas:extension:enterprise:2.0": {"department": "Ops"}}}],
        "User",
    )
    assert patched[ENTERPRISE_USER_URN] == {"department": "Ops"}


def test_attributes_and_excluded_attributes_with_legacy_prefixes() -> None:
    user = {
        "schemas": [USER_URN, ENTERPRISE_USER_URN],
        "id": "1",
        "userName": "ada@example.com",
        "title": "Countess",
        ENTERPRISE_USER_URN: {"department": "Engines", "division": "Analytical"},
    }
    picked = select_attributes(
        user, "User", attributes=["urn:scim:schemas:extension:enterprise:2.0:department"], excluded=None
    )
    assert picked[ENTERPRISE_USER_URN] == {"department": "Engines"} and "title" not in picked
    dropped = select_attributes(user, "User", attributes=None, excluded=["urn:scim:schemas:core:2.0:title"])
    assert "title" not in dropped and dropped["userName"] == "ada@example.com"
