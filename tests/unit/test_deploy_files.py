"""``Dockerfile`` and ``compose.yaml`` checked statically (README, "Operating it"): no registry is reachable
here, so neither is built or run. Dockerfile rules in the manner of hadolint (a pinned base, no ``latest``, no
``ADD`` of URLs, apt lists cleaned, pip without a cache, a non-root ``USER`` before ``CMD``, a ``HEALTHCHECK``
on ``/readyz`` without curl, ``EXPOSE`` = the port served); compose with every reference resolved (services,
volumes, bind mounts, variables the app reads, the roles of "Least privilege")."""

from __future__ import annotations

import json
import re
import shlex
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
SRC = ROOT / "src" / "scimledger"


# --- the Dockerfile -----------------------------------------------------------------------------------------
def instructions(text: str) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) with continuation lines joined and comments dropped."""
    joined = re.sub(
        r"\\\n", " ", "\n".join(line for line in text.splitlines() if not line.lstrip().startswith("#"))
    )
    found = []
    for line in joined.splitlines():
        if line.strip():
            keyword, _, rest = line.strip().partition(" ")
            found.append((keyword.upper(), rest.strip()))
    return found


DOCKERFILE = instructions((ROOT / "Dockerfile").read_text())


def args_of(name: str) -> list[str]:
    return [rest for keyword, rest in DOCKERFILE if keyword == name]


def exec_form(rest: str) -> list[str]:
    """A JSON-array (exec form) CMD/HEALTHCHECK command."""
    parsed = json.loads(rest)
    assert isinstance(parsed, list) and all(isinstance(a, str) for a in parsed), rest
    return parsed


def test_every_base_image_is_pinned_to_a_tag_and_none_is_latest() -> None:
    bases = args_of("FROM")
    assert bases
    for base in bases:
        image = base.split()[0]
        assert "@sha256:" in image or re.fullmatch(r"[\w./-]+:[\w.-]+", image), f"{image} is not pinned"
        assert not image.endswith(":latest"), image


def test_nothing_is_added_from_a_url_and_copy_sources_exist() -> None:
    for rest in args_of("ADD"):
        assert not re.search(r"\bhttps?://", rest), f"ADD {rest}: download in a RUN step with a checksum"
    for rest in args_of("COPY"):
        *sources, _ = [a for a in shlex.split(rest) if not a.startswith("--")]
        for source in sources:
            assert (ROOT / source).exists(), f"COPY {source}: not in the repository"


def test_apt_lists_are_cleaned_and_pip_keeps_no_cache() -> None:
    runs = args_of("RUN")
    for run in runs:
        if re.search(r"\bapt-get install\b", run):
            assert "--no-install-recommends" in run, run
            assert "rm -rf /var/lib/apt/lists/*" in run, run
    env = " ".join(args_of("ENV"))
    for run in runs:
        if re.search(r"\bpip install\b", run):
            assert "--no-cache-dir" in run or "PIP_NO_CACHE_DIR=1" in env, run


def test_the_server_runs_as_a_user_that_is_not_root() -> None:
    kinds = [keyword for keyword, _ in DOCKERFILE]
    assert "CMD" in kinds and "USER" in kinds
    before_cmd = [rest for keyword, rest in DOCKERFILE[: kinds.index("CMD")] if keyword == "USER"]
    assert before_cmd, "no USER before CMD"
    user = before_cmd[-1].split(":")[0]
    assert user not in ("root", "0")
    made = re.compile(rf"\buseradd\b.*\b{re.escape(user)}\s*(&&|;|$)")
    assert any(made.search(run) for run in args_of("RUN")), f"{user} is never created"


def served_port(command: list[str]) -> int:
    return int(command[command.index("--port") + 1]) if "--port" in command else 8000


def test_cmd_serves_on_all_interfaces_and_expose_matches_the_port() -> None:
    (cmd,) = args_of("CMD")
    command = exec_form(cmd)
    assert command[:2] == ["scimledger", "serve"]
    assert command[command.index("--host") + 1] == "0.0.0.0"
    exposed = {int(p.split("/")[0]) for rest in args_of("EXPOSE") for p in rest.split()}
    assert exposed == {served_port(command)}


def test_the_healthcheck_asks_readyz_with_python_not_curl() -> None:
    (check,) = args_of("HEALTHCHECK")
    options, _, command = check.partition("CMD ")
    assert "--interval=" in options and "--timeout=" in options
    argv = exec_form(command)
    assert argv[:2] == ["python", "-c"] and "urllib.request" in argv[2]
    assert not re.search(r"\b(curl|wget)\b", check)
    (cmd,) = args_of("CMD")
    assert f"http://127.0.0.1:{served_port(exec_form(cmd))}/readyz" in argv[2]
    compile(argv[2], "HEALTHCHECK", "exec")  # valid Python


def test_the_build_context_leaves_out_local_state_but_keeps_what_pip_needs() -> None:
    ignored = {
        line.strip()
        for line in (ROOT / ".dockerignore").read_text().splitlines()
        if line.strip()[:1] not in ("", "#")
    }
    assert {".git", ".venv", ".scimledger"} <= ignored
    copied = {a for rest in args_of("COPY") for a in shlex.split(rest)[:-1]}
    assert not copied & ignored


# --- compose.yaml -------------------------------------------------------------------------------------------
COMPOSE: dict[str, Any] = yaml.safe_load((ROOT / "compose.yaml").read_text())
SERVICES: dict[str, Any] = COMPOSE["services"]
INIT_SCRIPT = ROOT / "deploy" / "postgres-init" / "10-scimledger-roles.sh"


def app_service() -> dict[str, Any]:
    (name,) = [n for n, s in SERVICES.items() if s.get("build")]
    service: dict[str, Any] = SERVICES[name]
    return service


def variables_read_by_the_app() -> set[str]:
    names: set[str] = set()
    for path in [*SRC.rglob("*.py"), *(ROOT / "projections").rglob("*.py")]:
        names |= set(re.findall(r"\b((?:SCIMLEDGER|PROMETHEUS)_[A-Z_]+|DATABASE_URL)\b", path.read_text()))
    return names


def test_depends_on_names_services_that_exist_and_have_the_healthcheck_it_waits_for() -> None:
    for name, service in SERVICES.items():
        for needed, how in (service.get("depends_on") or {}).items():
            assert needed in SERVICES and needed != name, f"{name} depends on unknown {needed}"
            if how.get("condition") == "service_healthy":
                assert "healthcheck" in SERVICES[needed], f"{name} waits for {needed}'s missing healthcheck"


def test_volumes_are_declared_and_bind_mounts_exist() -> None:
    declared = set(COMPOSE.get("volumes") or {})
    used = set()
    for service in SERVICES.values():
        for mount in service.get("volumes", []):
            source = mount.split(":")[0]
            if source.startswith((".", "/")):
                assert (ROOT / source).exists(), f"bind mount {source} does not exist"
            else:
                used.add(source)
    assert used == declared


def test_images_are_pinned_and_the_build_context_has_the_dockerfile() -> None:
    for name, service in SERVICES.items():
        if service.get("build"):
            context = service["build"] if isinstance(service["build"], str) else service["build"]["context"]
            assert (ROOT / context / "Dockerfile").exists()
        else:
            image = service["image"]
            assert re.fullmatch(r"[\w./-]+:[\w.-]+", image) and not image.endswith(":latest"), name


def test_every_variable_given_to_the_app_is_one_it_reads() -> None:
    given = set(app_service()["environment"])
    assert given <= variables_read_by_the_app(), given - variables_read_by_the_app()


def test_the_app_serves_as_the_least_privilege_role_and_migrates_as_the_owner() -> None:
    env = app_service()["environment"]
    app_url, owner_url = urlsplit(env["DATABASE_URL"]), urlsplit(env["SCIMLEDGER_MIGRATE_URL"])
    assert app_url.username == "scimledger_app"  # schema.sql section 7 grants this role, and no more
    assert owner_url.username not in (None, "scimledger_app", "postgres")
    assert app_url.hostname == owner_url.hostname and app_url.hostname in SERVICES
    assert app_url.path == owner_url.path
    script = INIT_SCRIPT.read_text()
    created_roles = set(re.findall(r"CREATE ROLE (\w+) LOGIN", script))
    assert {app_url.username, owner_url.username} <= created_roles
    assert re.search(rf"CREATE DATABASE {app_url.path.lstrip('/')} OWNER {owner_url.username}\b", script)


def test_the_init_script_gets_every_password_it_reads_from_the_db_service() -> None:
    (db,) = [
        s for s in SERVICES.values() if any("docker-entrypoint-initdb.d" in m for m in s.get("volumes", []))
    ]
    script = INIT_SCRIPT.read_text()
    read = set(re.findall(r"\$(SCIMLEDGER_[A-Z_]+)", script))
    assert read and read <= set(db["environment"])
    assert INIT_SCRIPT.stat().st_mode & 0o111, "the postgres image runs only executable *.sh scripts"
    passwords = {"SCIMLEDGER_APP_PASSWORD", "SCIMLEDGER_OWNER_PASSWORD"}
    assert passwords <= read  # the same variables fill the app's URLs
    urls = (
        app_service()["environment"]["DATABASE_URL"] + app_service()["environment"]["SCIMLEDGER_MIGRATE_URL"]
    )
    assert all(f"${{{p}}}" in urls for p in passwords)


@pytest.mark.parametrize("where", ["dockerfile", "compose"])
def test_the_app_healthcheck_hits_readyz_on_the_served_port(where: str) -> None:
    service = app_service()
    command = service.get("command") or exec_form(args_of("CMD")[0])
    port = served_port(command)
    if where == "compose":
        test = service["healthcheck"]["test"]
        assert test[0] == "CMD" and test[1:3] == ["python", "-c"]
        assert f"http://127.0.0.1:{port}/readyz" in test[3]
        assert any(mapping.split(":")[-1] == str(port) for mapping in service["ports"])
    else:
        assert f":{port}/readyz" in args_of("HEALTHCHECK")[0]
    assert command[command.index("--host") + 1] == "0.0.0.0"
