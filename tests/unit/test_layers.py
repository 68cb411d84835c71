"""The dependency rule (DESIGN.md): domain and scim import nothing else from the project; api is the only
HTTP layer; handlers never import the api."""

from __future__ import annotations

import ast
from pathlib import Path

import pytest

SRC = Path(__file__).resolve().parents[2] / "src" / "scimledger"


def project_imports(path: Path) -> set[str]:
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module:
            names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    return {n for n in names if n.startswith(("scimledger", "projections"))}


@pytest.mark.parametrize("package", ["domain", "scim"])
def test_pure_packages_import_only_themselves(package: str) -> None:
    for path in (SRC / package).glob("*.py"):
        for name in project_imports(path):
            assert name.startswith(f"scimledger.{package}"), f"{path.name} imports {name}"


@pytest.mark.parametrize("module", [*sorted(p.name for p in (SRC / "handlers").glob("*.py")), "views.py"])
def test_inner_layers_do_not_import_the_api(module: str) -> None:
    path = SRC / "handlers" / module if (SRC / "handlers" / module).exists() else SRC / module
    assert not any(n.startswith("scimledger.api") for n in project_imports(path))


def test_domain_does_no_io() -> None:
    forbidden = {"asyncpg", "starlette", "httpx", "socket", "os"}
    for path in (SRC / "domain").glob("*.py"):
        tree = ast.parse(path.read_text())
        for node in ast.walk(tree):
            if isinstance(node, ast.Import):
                assert not {a.name.split(".")[0] for a in node.names} & forbidden, path.name
            if isinstance(node, ast.ImportFrom) and node.module:
                assert node.module.split(".")[0] not in forbidden, path.name
