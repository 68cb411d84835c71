"""Offline verification of an NDJSON export, and the signed checkpoints it is checked against (issue 7,
"Tamper evidence"), with no database: the export lines are made here from rows hashed with the chain's own
function, exactly as ``entries.export_record`` writes them."""

from __future__ import annotations

import base64
import os
import stat
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any
from uuid import UUID

import orjson
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import ec
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from scimledger import chain
from scimledger.audit import checkpoint, entries, offline

WORKSPACE = UUID("7a1c3a52-0f0e-4d7a-9a53-2c1e8f0b6d11")
OTHER = UUID("0b5e2f4e-8d0c-4a57-b2a1-9f3c6e7d8a90")
META = (
    '{"actor": {"id": "3f6d", "kind": "admin", "name": "admin key 3f6d"}, "source": "admin",'
    ' "request_id": "req-1", "user_agent": "curl/8", "client_addr": "192.0.2.7"}'
)


def rows(workspace: UUID = WORKSPACE, count: int = 6, first_position: int = 1) -> list[dict[str, Any]]:
    """A workspace's log rows (every other position, as when another workspace interleaves)."""
    made, prev = [], chain.GENESIS
    for n in range(count):
        position = first_position + 2 * n
        state = orjson.dumps(
            {
                "timestamp": {"_type_": "datetime_iso", "_data_": f"2026-03-01T10:00:0{n}.000001+00:00"},
                "member_id": "5d0c8e0e-3f7a-4d43-9a0e-6f1b2c3d4e5f",
                "active": True,
                "name": f"Member {n}",
            }
        )
        at = datetime(2026, 3, 1, 10, 0, tzinfo=UTC) + timedelta(seconds=n, microseconds=n)
        stream = UUID(int=n + 1)
        digest = chain.event_hash(prev, position, workspace, stream, 1, "MemberChanged", at, state, META)
        made.append(
            {
                "position": position,
                "workspace_id": workspace,
                "stream_id": stream,
                "stream_version": 1,
                "event_type": "MemberChanged",
                "state": state,
                "metadata_text": META,
                "recorded_at": at,
                "prev_hash": prev,
                "hash": digest,
            }
        )
        prev = digest
    return made


def export(*row_lists: list[dict[str, Any]]) -> list[bytes]:
    merged = sorted((r for rs in row_lists for r in rs), key=lambda r: r["position"])
    return [orjson.dumps(entries.export_record(r)) + b"\n" for r in merged]


def edited(line: bytes, change: Callable[[dict[str, Any]], None]) -> bytes:
    record = orjson.loads(line)
    change(record)
    return orjson.dumps(record) + b"\n"


def only(reports: list[chain.ChainReport]) -> chain.ChainReport:
    [report] = reports
    return report


# --- the export verifies ------------------------------------------------------------------------------------
def test_an_untouched_export_verifies() -> None:
    report = only(offline.verify_lines(export(rows())))
    assert (report.ok, report.events, report.head_position) == (True, 6, 11)


def test_each_workspace_of_an_export_is_its_own_chain() -> None:
    reports = offline.verify_lines(export(rows(WORKSPACE), rows(OTHER, first_position=2)))
    assert {r.workspace_id for r in reports} == {WORKSPACE, OTHER}
    assert all(r.ok for r in reports)


def test_an_empty_export_is_not_verified() -> None:
    assert offline.verify_lines([]) == []


def test_a_file_is_read_line_by_line(tmp_path: Path) -> None:
    path = tmp_path / "export.ndjson"
    path.write_bytes(b"".join(export(rows())))
    assert only(offline.verify_file(path)).ok


# --- edits are caught ---------------------------------------------------------------------------------------
def test_an_edited_data_field_is_caught() -> None:
    lines = export(rows())
    lines[2] = edited(lines[2], lambda r: r["data"].update(name="Someone else"))
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (5, chain.DATA_DIFFERS)


def test_data_with_true_turned_into_1_is_caught() -> None:
    lines = export(rows())
    lines[2] = edited(lines[2], lambda r: r["data"].update(active=1))
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (5, chain.DATA_DIFFERS)


def test_an_edited_actor_is_caught() -> None:
    lines = export(rows())
    lines[1] = edited(lines[1], lambda r: r["actor"].update(name="someone else"))
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (3, chain.METADATA_DIFFERS)


def test_an_added_field_is_caught() -> None:
    lines = export(rows())
    lines[1] = edited(lines[1], lambda r: r.update(approved_by="the CFO"))
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (3, chain.RECORD_DIFFERS)


def test_an_edited_state_is_a_hash_mismatch() -> None:
    lines = export(rows())
    lines[3] = edited(lines[3], lambda r: r.update(state=r["state"].replace("Member 3", "Member 9")))
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (7, chain.HASH_MISMATCH)


def test_an_edited_state_with_matching_data_is_still_a_hash_mismatch() -> None:
    def forge(record: dict[str, Any]) -> None:
        record["state"] = record["state"].replace("Member 3", "Member 9")
        record["data"]["name"] = "Member 9"

    lines = export(rows())
    lines[3] = edited(lines[3], forge)
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (7, chain.HASH_MISMATCH)


def test_an_edited_recorded_at_is_a_hash_mismatch() -> None:
    lines = export(rows())
    lines[3] = edited(lines[3], lambda r: r.update(recorded_at="2026-03-01T09:00:03.000003Z"))
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (7, chain.HASH_MISMATCH)


def test_a_dropped_line_breaks_the_link_of_the_next() -> None:
    lines = export(rows())
    del lines[2]
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason, report.events) == (7, chain.PREV_HASH_MISMATCH, 5)


def test_reordered_lines_break_the_link() -> None:
    lines = export(rows())
    lines[2], lines[3] = lines[3], lines[2]
    report = only(offline.verify_lines(lines))
    assert (report.broken_at, report.reason) == (7, chain.PREV_HASH_MISMATCH)


def test_an_export_that_does_not_start_at_genesis_is_caught() -> None:
    report = only(offline.verify_lines(export(rows())[1:]))
    assert (report.broken_at, report.reason) == (3, chain.PREV_HASH_MISMATCH)


@pytest.mark.parametrize(
    "line",
    [b"not json\n", b"[1, 2]\n", orjson.dumps({"position": 1}) + b"\n"],
    ids=["not-json", "not-an-object", "missing-fields"],
)
def test_a_line_that_is_no_record_is_refused_with_its_number(line: bytes) -> None:
    lines = export(rows())
    lines.insert(2, line)
    with pytest.raises(offline.InvalidExport) as raised:
        offline.verify_lines(lines)
    assert raised.value.line == 3


# --- against a checkpoint -----------------------------------------------------------------------------------
def anchor_at(made: list[dict[str, Any]], index: int) -> dict[UUID, chain.Anchor]:
    return {WORKSPACE: chain.Anchor(made[index]["position"], made[index]["hash"], index + 1)}


def test_an_export_that_extends_the_checkpoint_verifies() -> None:
    made = rows()
    assert only(offline.verify_lines(export(made), anchor_at(made, 3))).ok


def test_an_export_cut_before_the_checkpoint_is_caught() -> None:
    made = rows()
    report = only(offline.verify_lines(export(made)[:3], anchor_at(made, 4)))
    assert (report.broken_at, report.reason) == (9, chain.CHECKPOINT_NOT_EXTENDED)


def test_an_export_rewritten_with_a_recomputed_chain_is_caught_by_the_checkpoint() -> None:
    made = rows()
    forged = [dict(r) for r in made]
    forged[1]["state"] = forged[1]["state"].replace(b"Member 1", b"Member 7")
    prev = forged[0]["hash"]
    for row in forged[1:]:
        row["prev_hash"] = prev
        row["hash"] = prev = chain.event_hash(
            prev,
            row["position"],
            WORKSPACE,
            row["stream_id"],
            1,
            "MemberChanged",
            row["recorded_at"],
            row["state"],
            META,
        )
    assert only(offline.verify_lines(export(forged))).ok  # a valid chain on its own
    report = only(offline.verify_lines(export(forged), anchor_at(made, 4)))
    assert (report.broken_at, report.reason) == (9, chain.CHECKPOINT_NOT_EXTENDED)


def test_a_checkpoint_of_a_workspace_missing_from_the_export_is_not_extended() -> None:
    made = rows()
    reports = offline.verify_lines(export(rows(OTHER)), anchor_at(made, 2))
    assert [(r.workspace_id, r.reason) for r in reports if not r.ok] == [
        (WORKSPACE, chain.CHECKPOINT_NOT_EXTENDED)
    ]


# --- signed checkpoints -------------------------------------------------------------------------------------
KEY = Ed25519PrivateKey.generate()


def signed() -> checkpoint.Checkpoint:
    return checkpoint.sign(KEY, WORKSPACE, 11, bytes(range(32)), 6)


def test_a_checkpoint_round_trips_through_its_file_and_verifies() -> None:
    text = orjson.dumps(signed().as_dict())
    loaded = checkpoint.loads(text)
    checkpoint.check_signature(loaded, KEY.public_key())
    assert loaded.anchor() == chain.Anchor(11, bytes(range(32)), 6)


def test_the_signature_covers_the_canonical_json_of_the_other_fields() -> None:
    made = signed()
    message = orjson.dumps(made.claims(), option=orjson.OPT_SORT_KEYS)
    assert message == checkpoint.canonical(made.claims())
    KEY.public_key().verify(base64.b64decode(made.signature), message)


@pytest.mark.parametrize(
    ("field", "value"),
    [
        ("position", 12),
        ("events", 7),
        ("head_hash", "00" * 32),
        ("workspace_id", str(OTHER)),
        ("signed_at", "2020-01-01T00:00:00.000000Z"),
    ],
)
def test_a_checkpoint_with_an_altered_field_is_refused(field: str, value: Any) -> None:
    document = {**signed().as_dict(), field: value}
    with pytest.raises(checkpoint.CheckpointRefused, match="does not verify"):
        checkpoint.check_signature(checkpoint.parse(document), KEY.public_key())


def test_a_checkpoint_signed_by_another_key_is_refused() -> None:
    other = Ed25519PrivateKey.generate()
    made = checkpoint.sign(other, WORKSPACE, 11, bytes(32), 6)
    with pytest.raises(checkpoint.CheckpointRefused, match="names key"):
        checkpoint.check_signature(made, KEY.public_key())


def test_a_checkpoint_relabelled_with_our_key_id_is_still_refused() -> None:
    other = checkpoint.sign(Ed25519PrivateKey.generate(), WORKSPACE, 11, bytes(32), 6)
    relabelled = checkpoint.parse({**other.as_dict(), "key_id": checkpoint.key_id(KEY.public_key())})
    with pytest.raises(checkpoint.CheckpointRefused, match="does not verify"):
        checkpoint.check_signature(relabelled, KEY.public_key())


@pytest.mark.parametrize(
    "change",
    [
        {"extra": 1},
        {"position": 11.0},
        {"position": True},
        {"head_hash": "AB" * 32},
        {"workspace_id": str(WORKSPACE).upper()},
        {"signed_at": "yesterday"},
    ],
    ids=["extra-field", "float", "bool", "upper-hex", "upper-uuid", "not-a-time"],
)
def test_a_document_that_is_not_a_canonical_checkpoint_is_malformed(change: dict[str, Any]) -> None:
    with pytest.raises(checkpoint.MalformedCheckpoint):
        checkpoint.parse({**signed().as_dict(), **change})


# --- the signing key ----------------------------------------------------------------------------------------
def test_the_key_is_made_under_home_on_first_use_with_mode_0600_and_reused(tmp_path: Path) -> None:
    home = tmp_path / "home"
    assert checkpoint.existing_public_key(home, {}) is None  # looking never makes one
    first = checkpoint.signing_key(home, {})
    path = home / checkpoint.KEY_FILE
    assert stat.S_IMODE(os.stat(path).st_mode) == 0o600
    assert checkpoint.key_id(first.public_key()) == checkpoint.key_id(
        checkpoint.signing_key(home, {}).public_key()
    )
    assert checkpoint.existing_public_key(home, {}) is not None
    assert [p.name for p in home.iterdir()] == [checkpoint.KEY_FILE]  # no temporary file left


def pem(key: Ed25519PrivateKey) -> str:
    return key.private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    ).decode()


def test_the_key_may_be_given_as_pem_text_in_the_environment(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    found = checkpoint.signing_key(tmp_path, {checkpoint.KEY_ENV: pem(key)})
    assert checkpoint.key_id(found.public_key()) == checkpoint.key_id(key.public_key())
    assert not (tmp_path / checkpoint.KEY_FILE).exists()


def test_the_key_may_be_given_as_a_path_in_the_environment(tmp_path: Path) -> None:
    key = Ed25519PrivateKey.generate()
    (tmp_path / "mine.pem").write_text(pem(key))
    found = checkpoint.signing_key(tmp_path / "home", {checkpoint.KEY_ENV: str(tmp_path / "mine.pem")})
    assert checkpoint.key_id(found.public_key()) == checkpoint.key_id(key.public_key())


def test_a_key_that_is_not_ed25519_is_refused_without_showing_it(tmp_path: Path) -> None:
    other = ec.generate_private_key(ec.SECP256R1()).private_bytes(
        serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
    )
    with pytest.raises(checkpoint.KeyUnavailable, match="not an Ed25519 private key") as raised:
        checkpoint.signing_key(tmp_path, {checkpoint.KEY_ENV: other.decode()})
    assert "BEGIN" not in str(raised.value)


def test_the_public_key_document_names_the_key() -> None:
    document = checkpoint.public_key_document(KEY.public_key())
    assert document["algorithm"] == "Ed25519"
    assert document["key_id"] == checkpoint.key_id(KEY.public_key())
    loaded = checkpoint.public_key_from_pem(document["public_key_pem"].encode())
    assert checkpoint.key_id(loaded) == document["key_id"]
