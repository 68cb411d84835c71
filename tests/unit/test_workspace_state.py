"""The group commit restores a refused command's workspace from a one-level copy of its state
(store/workspace_cache.py ``_state_of``): that is a full copy only while the Workspace aggregate keeps
immutable values, or flat containers of them. This fails when a nested mutable value is added."""

from __future__ import annotations

import dataclasses
from datetime import datetime
from typing import Any
from uuid import UUID

from scimledger.domain import Workspace
from scimledger.store.workspace_cache import _state_of

IMMUTABLE = (str, int, float, bool, type(None), UUID, datetime)


def busy_workspace() -> Workspace:
    workspace = Workspace(name="Acme")
    workspace.add_domain("example.com")
    workspace.add_seats(3)
    workspace.assign_seat("m1")
    workspace.set_automatic_seat_assignment(True)
    return workspace


def immutable(value: Any) -> bool:
    if isinstance(value, IMMUTABLE):
        return True
    return dataclasses.is_dataclass(value) and type(value).__dataclass_params__.frozen  # type: ignore[attr-defined]


def test_every_attribute_is_immutable_or_a_flat_container_of_immutables() -> None:
    for name, value in busy_workspace().__dict__.items():
        if isinstance(value, dict):
            assert all(immutable(k) and immutable(v) for k, v in value.items()), name
        elif isinstance(value, list | set):
            assert all(immutable(v) for v in value), name
        else:
            assert immutable(value), name


def test_a_refused_change_is_undone_by_restoring_the_copy() -> None:
    workspace = busy_workspace()
    before = _state_of(workspace)
    expected = {k: (v.copy() if isinstance(v, dict | list | set) else v) for k, v in before.items()}
    workspace.add_domain("other.example")
    workspace.add_seats(5)
    workspace.__dict__.clear()
    workspace.__dict__.update(before)
    assert workspace.__dict__ == expected
    assert "other.example" not in workspace.domains and workspace.seats_total == 3
