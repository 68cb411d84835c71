"""The common IdP look-ups are index scans (docs/architecture.md, "Shape", queries; message-db: query plans
are tested).

The read-model tables are filled with 5,000 users and 2,000 groups in other workspaces plus a few in ours,
analysed, and the exact SQL the app runs for each filter is explained.
"""

from __future__ import annotations

from typing import Literal
from uuid import uuid4

import asyncpg
import orjson
import pytest

from scimledger.domain.names import user_name_key
from scimledger.scim.filter import parse_filter
from scimledger.scim.filter_sql import compile_filter


@pytest.fixture
async def filled(pool: asyncpg.Pool) -> asyncpg.Pool:
    rows = []
    for n in range(5000):
        name = f"user{n}@corp{n % 50}.example"
        resource = {"userName": name, "externalId": f"ext-{n}", "emails": [{"value": name, "type": "work"}]}
        rows.append(
            (
                uuid4(),
                uuid4() if n % 10 else OURS,
                uuid4(),
                name,
                f"ext-{n}",
                f"User {n}",
                True,
                "active",
                "member",
                "idp",
                True,
                [name],
                orjson.dumps(resource).decode(),
            )
        )
    await pool.executemany(
        """INSERT INTO scim_users (id, workspace_id, person_id, user_name, external_id, display_name, active,
                                   status, role, managed_by, has_seat, email_values, resource, created,
                                   last_modified, version, user_name_key)
           VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13::jsonb, now(), now(), 1,
                   lower($4))""",
        rows,
    )
    await pool.executemany(
        """INSERT INTO scim_groups (id, workspace_id, display_name, external_id, managed_by, resource,
                                    created, last_modified, version)
           VALUES ($1, $2, $3, $4, 'idp', '{}'::jsonb, now(), now(), 1)""",
        [(uuid4(), uuid4() if n % 10 else OURS, f"Group {n}", f"gext-{n}") for n in range(2000)],
    )
    await pool.execute("ANALYZE scim_users; ANALYZE scim_groups")
    return pool


OURS = uuid4()


async def plan(pool: asyncpg.Pool, resource: Literal["User", "Group"], text: str) -> str:
    args: list[object] = [OURS]
    where = compile_filter(parse_filter(text), resource, args, user_name_key)
    table = "scim_users u" if resource == "User" else "scim_groups g"
    alias = "u" if resource == "User" else "g"
    rows = await pool.fetch(
        f"EXPLAIN SELECT * FROM {table} WHERE {alias}.workspace_id = $1 AND ({where})", *args
    )
    return "\n".join(r[0] for r in rows)


@pytest.mark.parametrize(
    ("resource", "text", "index"),
    [
        ("User", 'userName eq "USER10@corp10.example"', "scim_users_user_name_key"),
        ("User", 'externalId eq "ext-20"', "scim_users_external_id"),
        ("User", 'emails.value eq "user30@corp30.example"', "scim_users_emails"),
        ("User", 'emails[value eq "user30@corp30.example"]', "scim_users_emails"),
        ("Group", 'displayName eq "group 40"', "scim_groups_display_name"),
        ("Group", 'externalId eq "gext-40"', "scim_groups_external_id"),
    ],
)
async def test_lookup_uses_its_index(
    filled: asyncpg.Pool, resource: Literal["User", "Group"], text: str, index: str
) -> None:
    explained = await plan(filled, resource, text)
    assert index in explained, explained
    assert "Seq Scan" not in explained, explained


async def test_id_lookup_uses_the_primary_key(filled: asyncpg.Pool) -> None:
    some_id = await filled.fetchval("SELECT id FROM scim_users WHERE workspace_id = $1 LIMIT 1", OURS)
    explained = await plan(filled, "User", f'id eq "{some_id}"')
    assert "scim_users_pkey" in explained, explained
