"""The fault suite at a reduced size (issue 8, "Fault suite"; ``make faults`` runs it at full size): each
scenario of tests/faults/scenarios.py with a small request cap must pass every one of its checks."""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.faults.__main__ import table
from tests.faults.cluster import Cluster
from tests.faults.scenarios import SCENARIOS, Options

REQUESTS = 100
DEADLINE = 20.0
SEED = int(os.environ.get("FAULTS_SEED", "8"))


@pytest.fixture(scope="module")
def cluster() -> Iterator[Cluster]:
    with Cluster() as running:
        yield running


@pytest.mark.parametrize("scenario", list(SCENARIOS))
async def test_the_scenario_passes_its_checks(cluster: Cluster, scenario: str, tmp_path: Path) -> None:
    options = Options(SEED, REQUESTS, DEADLINE, tmp_path, outage=1.0)
    report = await SCENARIOS[scenario](cluster, options)
    assert report.passed, f"seed {SEED}\n{table([report])}\nfigures: {report.figures}"
