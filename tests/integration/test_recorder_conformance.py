"""eventsourcing's own recorder test cases, run against our asyncpg recorder (through ``recorder_facade``).

Each test gets a fresh database cloned from the session's template (the ``database_url`` fixture) and
builds the facade on it; every facade a test creates is closed (pool, loop, thread) before the database is
dropped. All of the library's test methods run, including the timing ones (``test_performance``,
``test_concurrent_throughput``): they are cheap here and also check that nothing fails under load.

The library's abstract cases are reached through the module (``cases.X``), never imported by name: pytest
collects every ``unittest.TestCase`` bound in a test module, abstract or not.

``eventsourcing.tests.persistence`` imports ``eventsourcing.cipher``, which needs pycryptodome (the
library's ``crypto`` extra, not one of our dependencies). None of the cases run here uses a cipher, so when
pycryptodome is absent a placeholder ``eventsourcing.cipher`` is put in ``sys.modules`` for that one import
and removed again right after (see ``_library_cases``).
"""

from __future__ import annotations

import importlib
import importlib.util
import sys
import types
from collections.abc import Iterator
from typing import TYPE_CHECKING, Any, TypeVar

import pytest

from tests.integration.recorder_facade import (
    FacadeAggregateRecorder,
    FacadeApplicationRecorder,
    FacadeProcessRecorder,
    FacadeTrackingRecorder,
    RecorderFacade,
)

F = TypeVar("F", bound=RecorderFacade)


def _library_cases() -> types.ModuleType:
    """``eventsourcing.tests.persistence``, imported even without pycryptodome (see the module docstring)."""
    if importlib.util.find_spec("Crypto") is not None:
        return importlib.import_module("eventsourcing.tests.persistence")

    class AESCipher:
        def __init__(self, *args: Any, **kwargs: Any) -> None:
            raise RuntimeError("AESCipher needs pycryptodome (eventsourcing[crypto]), which is not installed")

    placeholder = types.ModuleType("eventsourcing.cipher")
    placeholder.AESCipher = AESCipher  # type: ignore[attr-defined]
    sys.modules["eventsourcing.cipher"] = placeholder
    try:
        return importlib.import_module("eventsourcing.tests.persistence")
    finally:
        if sys.modules.get("eventsourcing.cipher") is placeholder:
            del sys.modules["eventsourcing.cipher"]


if TYPE_CHECKING:
    from eventsourcing.tests import persistence as cases
else:
    cases = _library_cases()


class FreshDatabase:
    """Mixin for the library's ``unittest.TestCase`` classes: a fresh database per test, and cleanup."""

    database_url: str
    _facades: list[RecorderFacade]

    @pytest.fixture(autouse=True)
    def _fresh_database(self, database_url: str) -> Iterator[None]:
        self.database_url = database_url
        self._facades = []
        yield
        while self._facades:
            self._facades.pop().close()

    def facade(self, cls: type[F]) -> F:
        made = cls(self.database_url)
        self._facades.append(made)
        return made


class TestAggregateRecorder(FreshDatabase, cases.AggregateRecorderTestCase):
    def create_recorder(self) -> FacadeAggregateRecorder:
        return self.facade(FacadeAggregateRecorder)


class TestApplicationRecorder(FreshDatabase, cases.ApplicationRecorderTestCase[FacadeApplicationRecorder]):
    def create_recorder(self) -> FacadeApplicationRecorder:
        return self.facade(FacadeApplicationRecorder)

    def test_insert_subscribe(self) -> None:
        """The library's optional subscription test (LISTEN/NOTIFY on ``scimledger_events`` + polling)."""
        self.optional_test_insert_subscribe()


class TestNonInterleavingNotificationIDs(FreshDatabase, cases.NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> FacadeApplicationRecorder:
        return self.facade(FacadeApplicationRecorder)


class TestTrackingRecorder(FreshDatabase, cases.TrackingRecorderTestCase):
    def create_recorder(self) -> FacadeTrackingRecorder:
        return self.facade(FacadeTrackingRecorder)


class TestProcessRecorder(FreshDatabase, cases.ProcessRecorderTestCase):
    def create_recorder(self) -> FacadeProcessRecorder:
        return self.facade(FacadeProcessRecorder)
