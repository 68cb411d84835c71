"""Bearer secrets (seed 004): prefix, checksum, hash."""

from __future__ import annotations

from scimledger import credentials


def test_generated_secret_is_well_formed_and_unique() -> None:
    a = credentials.generate(credentials.SCIM_TOKEN_PREFIX)
    b = credentials.generate(credentials.SCIM_TOKEN_PREFIX)
    assert a != b
    assert a.startswith("sltok_")
    assert credentials.well_formed(a, credentials.SCIM_TOKEN_PREFIX)


def test_a_typo_fails_the_checksum() -> None:
    secret = credentials.generate(credentials.SCIM_TOKEN_PREFIX)
    flipped = secret[:10] + ("A" if secret[10] != "A" else "B") + secret[11:]
    assert not credentials.well_formed(flipped, credentials.SCIM_TOKEN_PREFIX)


def test_an_admin_key_is_not_a_scim_token() -> None:
    key = credentials.generate(credentials.ADMIN_KEY_PREFIX)
    assert not credentials.well_formed(key, credentials.SCIM_TOKEN_PREFIX)


def test_hash_is_sha256() -> None:
    assert len(credentials.secret_hash("x")) == 32
