"""The benchmark's bookkeeping on synthetic numbers (bench/harness.py, report.py, plots.py, pools.py):
what ``make bench`` prints and writes is right without running a benchmark."""

from __future__ import annotations

import dataclasses
import json
import sys
from pathlib import Path
from typing import Any

import orjson
import pytest

BENCH = Path(__file__).resolve().parents[2] / "bench"
sys.path.insert(0, str(BENCH))

import harness  # noqa: E402 - bench/ is not a package: its modules import each other by name
import plots  # noqa: E402
import pools  # noqa: E402
import report  # noqa: E402
import workloads  # noqa: E402

OUTPUT = [
    "Running 4s test @ http://127.0.0.1:1\n",
    'BENCH {"sent":1010,"answered":1000,"ok":990,"failed":10,"socket_errors":2,"timeouts":1,'
    '"exhausted":false,"statuses":{"201":990,"409":10},"duration_us":4000000,"p50_us":12500,'
    '"p90_us":30000,"p99_us":81234,"max_us":150000,"first_error":"409 conflict"}\n',
]


def measurement(rps: float, p99: float, errors: int = 0) -> dict[str, Any]:
    return {"rps": rps, "p99_ms": p99, "errors": errors, "first_error": "500 boom" if errors else ""}


def test_a_wrk_result_becomes_requests_per_second_milliseconds_and_errors() -> None:
    r = harness.parse_result(OUTPUT)
    assert (r["rps"], r["seconds"]) == (250.0, 4.0)  # answered / duration
    assert (r["p50_ms"], r["p90_ms"], r["p99_ms"], r["max_ms"]) == (12.5, 30.0, 81.23, 150.0)
    assert r["errors"] == 13  # non-2xx (or unexpected body) + socket errors + timeouts
    assert r["statuses"] == {"201": 990, "409": 10}


def test_wrk_without_a_result_line_is_an_error() -> None:
    with pytest.raises(RuntimeError, match="no result"):
        harness.parse_result(["unable to connect to 127.0.0.1:1\n"])


def test_wrk_is_run_with_the_pool_and_its_settings() -> None:
    run = harness.Run(Path("/tmp/p.txt"), 4.4, 16, cycle=True, first_n=7, expect='"totalResults":1,')
    args = harness.wrk_args("wrk", "http://127.0.0.1:9", run)
    assert args[:4] == ["wrk", "-t1", "-c16", "-d4s"]
    assert args[-5:] == ["--", "/tmp/p.txt", "1", "7", '"totalResults":1,']


def test_a_row_passes_when_the_ratio_meets_its_target_and_nothing_failed() -> None:
    c = report.Comparison("create", "create/ours/1w", "create/ceiling/1w", "ceiling", 0.4, 100.0)
    row = report.evaluate(
        c, {"create/ours/1w": measurement(500, 40), "create/ceiling/1w": measurement(1000, 9)}
    )
    assert (row["ratio"], row["pass"], row["problems"]) == (0.5, True, [])
    assert report.cells(row) == [
        "create",
        "500, 40.0 ms",
        "1,000, 9.0 ms (one-INSERT ceiling)",
        "0.50",
        ">= 0.4, p99 < 100 ms",
        "PASS",
    ]


@pytest.mark.parametrize(
    ("ours", "base", "problem"),
    [
        (measurement(300, 40), measurement(1000, 9), "ratio below target"),
        (measurement(500, 120), measurement(1000, 9), "p99 above target"),
        (measurement(500, 40, errors=3), measurement(1000, 9), "ours: 3 errors (500 boom)"),
        (measurement(500, 40), measurement(1000, 9, errors=1), "baseline: 1 errors (500 boom)"),
        (measurement(500, 40), None, "baseline create/ceiling/1w: not measured"),
        (measurement(500, 40), {"error": "RuntimeError: ceiling did not start"}, "ceiling did not start"),
    ],
)
def test_a_row_fails_and_says_why(ours: dict[str, Any], base: dict[str, Any] | None, problem: str) -> None:
    c = report.Comparison("create", "create/ours/1w", "create/ceiling/1w", "ceiling", 0.4, 100.0)
    measurements = {"create/ours/1w": ours, **({"create/ceiling/1w": base} if base else {})}
    row = report.evaluate(c, measurements)
    assert row["pass"] is False
    assert any(problem in p for p in row["problems"]), row["problems"]
    assert report.cells(row)[-1] == "FAIL"


def test_a_row_without_a_baseline_only_needs_no_errors() -> None:
    c = report.Comparison("PATCH active=false", "deactivate/ours/1w")
    assert report.evaluate(c, {"deactivate/ours/1w": measurement(400, 30)})["pass"] is True
    failed = report.evaluate(c, {"deactivate/ours/1w": measurement(400, 30, errors=1)})
    assert failed["pass"] is False
    assert report.cells(failed)[2:5] == ["-", "-", "no errors"]


def test_every_workload_has_a_row_per_worker_count_and_the_peer_rows_use_one_worker() -> None:
    rows = report.comparisons((1, 2), 100_000, 10_000)
    assert len(rows) == 2 * 7 + 3
    assert {r.ours.split("/")[0] for r in rows} == {
        "create", "lookup", "create-spread", "deactivate", "group-add", "entra", "okta",
    }  # fmt: skip
    peer = [r for r in rows if r.baseline_kind == "peer"]
    assert [r.ratio_min for r in peer] == [3.0, None, None]
    assert all(r.ours.endswith("/1w") and r.baseline and r.baseline.endswith("/1w") for r in peer)


def synthetic_rows() -> list[dict[str, Any]]:
    measurements = {
        "create/ours/1w": measurement(500, 40),
        "create/ceiling/1w": measurement(1000, 9),
        "deactivate/ours/1w": measurement(400, 30, errors=2),
    }
    return report.rows_for(
        [
            report.Comparison("POST /Users (1w)", "create/ours/1w", "create/ceiling/1w", "ceiling", 0.4),
            report.Comparison("PATCH active=false (1w)", "deactivate/ours/1w"),
        ],
        measurements,
    )


def test_the_table_has_a_header_a_rule_and_a_line_per_row() -> None:
    lines = report.table(synthetic_rows()).splitlines()
    assert len(lines) == 4
    assert lines[0].split()[:2] == ["workload", "ours"]
    assert set(lines[1]) <= {"-", " "}
    assert lines[2].startswith("POST /Users (1w)") and lines[2].endswith("PASS")
    assert lines[3].endswith("FAIL")


def test_results_are_written_as_json_twice_and_the_table_as_markdown(tmp_path: Path) -> None:
    rows = synthetic_rows()
    meta = {
        "started": "2026-01-01T00:00:00Z", "code": "abc1234", "cores": 2, "profile": "quick",
        "seconds_per_run": 4, "warmup_per_run": 1, "connections": 16, "loadgen": "wrk 4.2.0",
        "database": "fresh embedded PostgreSQL", "fsync_synchronous_commit": "on/on",
        "noisy": ["create/ours/1w"],
    }  # fmt: skip
    md = report.markdown(rows, meta)
    paths = report.write(tmp_path / "results", "20260101T000000Z", {"rows": rows}, md)
    assert [p.name for p in paths] == ["20260101T000000Z.json", "latest.json", "latest.md"]
    assert json.loads(paths[0].read_text()) == json.loads(paths[1].read_text()) == {"rows": rows}
    table = [line for line in paths[2].read_text().splitlines() if line.startswith("|")]
    assert len(table) == 2 + len(rows)  # header, separator, rows
    assert "| POST /Users (1w) | 500, 40.0 ms | 1,000, 9.0 ms (one-INSERT ceiling) | 0.50 |" in table[2]
    assert "- PATCH active=false (1w): ours: 2 errors (500 boom)" in paths[2].read_text()
    assert "Not clean: processes not ours used more than 20% of a core during create/ours/1w." in md


def test_plots_are_png_files_and_the_latest_copies_match(tmp_path: Path) -> None:
    paths = plots.draw(synthetic_rows(), tmp_path, "20260101T000000Z", "abc1234, quick")
    assert sorted(p.name for p in paths) == [
        "20260101T000000Z-p99.png",
        "20260101T000000Z-throughput.png",
        "latest-p99.png",
        "latest-throughput.png",
    ]
    for path in paths:
        assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    assert paths[0].read_bytes() == paths[1].read_bytes()


def workspace(users: int = 10, groups: int = 2, members: int = 2) -> pools.Workspace:
    ids = [f"id-{k}" for k in range(1, users + 1)]
    return pools.Workspace(
        "ws", "tok", "tid", "x.test", users, ids, [f"g{g}" for g in range(groups)], members
    )


def test_a_create_template_is_the_create_body_for_any_n() -> None:
    (line,) = pools.creates("/scim/v2", [("tok", "x.test")])
    assert line[:3] == ("POST", "/scim/v2/Users", "tok")
    assert orjson.loads(line[3].replace("{n}", "42")) == pools.user_body(42, "x.test")


def test_a_cursor_never_hands_out_a_member_twice_and_stops_when_none_is_left() -> None:
    c = pools.Cursor(workspace())
    deactivated = [line[1].rsplit("/", 1)[1] for line in pools.deactivations("/v2", c, 3)]
    added = [
        orjson.loads(line[3])["Operations"][0]["value"][0]["value"] for line in pools.group_adds("/v2", c, 99)
    ]
    assert deactivated == ["id-10", "id-9", "id-8"]
    assert added == ["id-3", "id-4", "id-5", "id-6", "id-7"]  # after the groups' first 2 members, before 8
    assert c.left_to_add() == 0
    with pytest.raises(ValueError, match="no member left"):
        c.to_add()


def test_an_okta_group_push_sends_its_member_patch_as_a_follow_up_of_the_post() -> None:
    lines = pools.okta_unit("/scim/v2", pools.Cursor(workspace()))
    assert [line[0] for line in lines] == ["GET", "PUT", "POST"]
    post = lines[2]
    assert len(post) == 8
    assert orjson.loads(post[3])["displayName"] == post[4] == "okta push 1 x.test"
    assert post[5:7] == ("PATCH", "/scim/v2/Groups/{id}")
    assert len(orjson.loads(post[7])["Operations"][0]["value"]) == 2


def test_group_pushes_have_names_of_their_own_across_workspaces() -> None:
    """``replay.lua`` sends a push's follow-up (with its workspace's token) by the name the 201 carries."""
    cursors = [pools.Cursor(dataclasses.replace(workspace(40), domain=f"ws{i}.test")) for i in range(3)]
    keys = [line[4] for line in pools.mix("/scim/v2", cursors, 9, "okta") if len(line) > 4]
    assert len(keys) == len(set(keys)) == 9


def test_a_pool_is_never_empty_and_holds_one_request_per_line(tmp_path: Path) -> None:
    with pytest.raises(ValueError, match="empty pool"):
        pools.write(tmp_path / "empty.txt", [])
    lines = pools.mix("/scim/v2", [pools.Cursor(workspace(40))], 3, "entra")
    assert pools.write(tmp_path / "p.txt", lines) == 15
    assert [tuple(x.split("\t")) for x in (tmp_path / "p.txt").read_text().splitlines()] == lines


@pytest.mark.parametrize("profile", [workloads.FULL, workloads.QUICK], ids=lambda p: p.name)
def test_the_seeding_of_each_profile_suffices_for_its_longest_runs(profile: workloads.Profile) -> None:
    assert workloads.shortfall(profile) == []


def test_a_profile_too_small_for_its_runs_says_what_it_lacks() -> None:
    small = dataclasses.replace(workloads.QUICK, lookup_members=1000, mix_users=20)
    assert workloads.shortfall(small) == [
        "the look-up workspace needs 4,800 members, has 1,000",
        "a mix workspace needs 72 members outside groups",
    ]
