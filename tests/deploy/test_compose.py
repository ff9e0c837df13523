"""docker-compose.yml is valid Compose and everything it names exists.

There is no Docker engine in CI, so this checks what `docker compose config` would, and more:
the file against the Compose Specification schema (vendored, see compose_spec.NOTICE), every
`${VAR}` against the example env file, every build context, Dockerfile, COPY source, bind
mount and secret folder on disk, every published port against the Dockerfile and the
command, and the worker's sandbox (read-only root, only the outbox volume writable).
"""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from contract.site import load_config

REPO = Path(__file__).resolve().parents[2]
COMPOSE_FILE = REPO / "docker-compose.yml"
ENV_EXAMPLE = REPO / "docker" / "compose.env.example"
SCHEMA = Path(__file__).with_name("compose_spec.json")
VARIABLE = re.compile(r"\$\{(?P<name>[A-Za-z_][A-Za-z0-9_]*)(?:(?P<op>:?[-?])(?P<arg>[^}]*))?\}")


def example_env() -> dict[str, str]:
    pairs = (
        line.split("=", 1)
        for line in ENV_EXAMPLE.read_text(encoding="utf-8").splitlines()
        if line.strip() and not line.lstrip().startswith("#")
    )
    return {name.strip(): value.strip() for name, value in pairs}


def interpolate(node: Any, env: dict[str, str]) -> Any:
    """Compose's `${VAR}`, `${VAR:-default}` and `${VAR:?error}`, recursively."""
    if isinstance(node, dict):
        return {key: interpolate(value, env) for key, value in node.items()}
    if isinstance(node, list):
        return [interpolate(value, env) for value in node]
    if not isinstance(node, str):
        return node

    def substitute(match: re.Match[str]) -> str:
        name, op, arg = match["name"], match["op"], match["arg"]
        if name in env:
            return env[name]
        if op in (":-", "-"):
            return str(arg)
        raise AssertionError(f"${{{name}}} is unset and has no default: {arg}")

    return VARIABLE.sub(substitute, node)


def raw_compose() -> dict[str, Any]:
    loaded = yaml.safe_load(COMPOSE_FILE.read_text(encoding="utf-8"))
    assert isinstance(loaded, dict)
    return loaded


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    """The compose file as Docker would see it with the example .env."""
    resolved = interpolate(raw_compose(), example_env())
    assert isinstance(resolved, dict)
    return resolved


def services(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def workers(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(compose).items() if n.startswith("worker")}


def bind_mounts(service: dict[str, Any]) -> Iterator[tuple[str, str, str]]:
    """(source, target, mode) of every short-syntax volume that is a host path."""
    for entry in service.get("volumes", []):
        source, target, *mode = entry.split(":")
        if source.startswith((".", "/")):
            yield source, target, mode[0] if mode else "rw"


def named_volumes(service: dict[str, Any]) -> Iterator[tuple[str, str]]:
    for entry in service.get("volumes", []):
        source, target, *_ = entry.split(":")
        if not source.startswith((".", "/")):
            yield source, target


def dockerfile(service: dict[str, Any]) -> Path:
    build = service["build"]
    return REPO / build["context"] / build["dockerfile"]


def test_matches_the_compose_specification(compose: dict[str, Any]) -> None:
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    validator = jsonschema.Draft201909Validator(schema)
    errors = [f"{list(e.absolute_path)}: {e.message}" for e in validator.iter_errors(compose)]
    assert errors == []


def test_the_schema_rejects_what_compose_would() -> None:
    """The vendored schema is live: a typo in a service key is an error."""
    schema = json.loads(SCHEMA.read_text(encoding="utf-8"))
    broken = {"services": {"api": {"image": "x", "helthcheck": {}}}}
    assert not jsonschema.Draft201909Validator(schema).is_valid(broken)


def test_every_variable_is_in_the_example_env() -> None:
    """An unset variable without a default would stop `docker compose up`."""
    text = COMPOSE_FILE.read_text(encoding="utf-8")
    required = {m["name"] for m in VARIABLE.finditer(text) if m["op"] in (None, ":?", "?")}
    referenced = {m["name"] for m in VARIABLE.finditer(text)}
    documented = set(example_env())
    assert required <= documented
    assert documented <= referenced, "the example env names a variable nothing uses"


def test_builds_and_their_copies_exist(compose: dict[str, Any]) -> None:
    built = [s for s in services(compose).values() if "build" in s]
    assert built
    for service in built:
        path = dockerfile(service)
        assert path.is_file(), path
        for line in path.read_text(encoding="utf-8").splitlines():
            if line.startswith("COPY "):
                *sources, _target = line.split()[1:]
                for source in sources:
                    assert (REPO / service["build"]["context"] / source).exists(), (path, source)


def test_published_ports_are_the_ones_served(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for mapping in service.get("ports", []):
            host, container = str(mapping).rsplit(":", 1)
            assert int(host) > 0
            exposed = re.findall(r"^EXPOSE (\d+)", dockerfile(service).read_text(), re.MULTILINE)
            assert container in exposed, (name, container)
            command = service["command"]
            assert command[command.index("--port") + 1] == container, name
            probe = " ".join(service["healthcheck"]["test"])
            assert f"127.0.0.1:{container}/healthz" in probe, name


def test_database_and_api_are_healthchecked_and_ordered(compose: dict[str, Any]) -> None:
    db, api = services(compose)["db"], services(compose)["api"]
    assert db["healthcheck"]["test"]
    assert any(target == "/var/lib/postgresql/data" for _, target in named_volumes(db))
    assert api["depends_on"]["db"]["condition"] == "service_healthy"
    assert api["command"][0] == "serve"
    assert "--no-migrate" not in api["command"], "the API must migrate on start"
    assert api["environment"]["TALLY_DATABASE_URL"].startswith("postgresql+psycopg://")
    assert urlsplit(api["environment"]["TALLY_DATABASE_URL"]).hostname == "db"


def test_declared_volumes_and_secrets_exist(compose: dict[str, Any]) -> None:
    for name, service in services(compose).items():
        for source, _target in named_volumes(service):
            assert source in compose["volumes"], (name, source)
        for secret in service.get("secrets", []):
            assert secret in compose["secrets"], (name, secret)
        for source, _target, _mode in bind_mounts(service):
            assert (REPO / source).exists(), (name, source)
    for secret in compose["secrets"].values():
        folder = (REPO / secret["file"]).parent
        assert folder.is_dir(), f"{folder}: the operator's tokens go here"


def test_workers_write_only_their_outbox(compose: dict[str, Any]) -> None:
    assert workers(compose)
    for name, worker in workers(compose).items():
        assert worker["read_only"] is True, name
        assert "tmpfs" not in worker, name
        assert all(mode == "ro" for _, _, mode in bind_mounts(worker)), name
        writable = [target for _, target in named_volumes(worker)]
        assert len(writable) == 1, name
        config_source = next(s for s, t, _ in bind_mounts(worker) if t == "/etc/tally/site.yaml")
        config = load_config(REPO / config_source)
        assert config.outbox.path.parent == Path(writable[0]), name
        assert config.model.cache_dir is None or config.model.cache_dir.is_relative_to(writable[0])
        api_url = urlsplit(config.uplink.api_url or "")
        assert api_url.hostname in services(compose), name
        assert str(api_url.port) in services(compose)[api_url.hostname]["command"], name
        token_file = config.uplink.token_file
        assert token_file is not None
        assert token_file.parent == Path("/run/secrets"), name
        assert token_file.name in worker["secrets"], name
        models = {t: s for s, t, _ in bind_mounts(worker)}
        model = Path(config.model.path)
        assert (REPO / models[str(model.parent)] / model.name).is_file(), name
