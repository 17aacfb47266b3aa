"""What the Docker files promise, read from the files (there is no Docker daemon in CI;
`docker compose config` in scripts/test.sh checks that the compose file is valid):

- every broker has a listener the host reaches: advertised on 127.0.0.1 at a port that
  is published on the host's loopback to that listener, so `make test`, `shop rebuild`
  and the benches run against it (127.0.0.1:9094 for the one-node set); and one the
  containers reach, by the broker's name, that the workers bootstrap from;
- the workers are restarted unless stopped, each with its own SHOP_INSTANCE_ID, and start
  once their brokers are healthy; brokers and workers have health checks;
- the image runs as an unprivileged user, checks its health on the worker's readiness
  endpoint, installs at the versions in constraints.txt (as scripts/bootstrap.sh does
  for CI), and holds the project's packages but not bench/ nor tests/.
"""

from __future__ import annotations

import fnmatch
import json
import re
import shlex
import tomllib
from pathlib import Path
from typing import Any

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
HOST_BOOTSTRAP = "127.0.0.1:9094"
"""What the README tells host tools to use against `docker compose up`."""


def compose() -> dict[str, Any]:
    loaded: dict[str, Any] = yaml.safe_load((ROOT / "docker-compose.yml").read_text())
    return loaded


def services(kind: str) -> dict[str, dict[str, Any]]:
    """The brokers (an image of apache/kafka) or the workers (built from the Dockerfile)."""
    found = {}
    for name, service in compose()["services"].items():
        is_broker = str(service.get("image", "")).startswith("apache/kafka:")
        if (kind == "broker") == is_broker and (is_broker or "build" in service):
            found[name] = service
    assert found, f"no {kind} in docker-compose.yml"
    return found


def listeners(value: str) -> dict[str, tuple[str, int]]:
    """`NAME://host:port,...` -> {NAME: (host, port)}."""
    found = {}
    for entry in value.split(","):
        name, _, address = entry.partition("://")
        host, _, port = address.rpartition(":")
        found[name] = (host, int(port))
    return found


def published(service: dict[str, Any]) -> dict[int, tuple[str, int]]:
    """container port -> (host address, host port), from `ports` in short syntax."""
    found = {}
    for entry in service.get("ports", []):
        host_ip, host_port, container_port = str(entry).split(":")
        found[int(container_port)] = (host_ip, int(host_port))
    return found


@pytest.mark.parametrize("name", sorted(services("broker")))
def test_every_broker_has_a_listener_for_the_containers_and_one_for_the_host(
    name: str,
) -> None:
    broker = services("broker")[name]
    env = broker["environment"]
    bound = listeners(env["KAFKA_LISTENERS"])
    advertised = listeners(env["KAFKA_ADVERTISED_LISTENERS"])
    protocols = dict(p.split(":") for p in env["KAFKA_LISTENER_SECURITY_PROTOCOL_MAP"].split(","))
    assert set(advertised) <= set(bound) <= set(protocols)
    internal = [n for n, (host, _) in advertised.items() if host == broker.get("hostname", name)]
    host_side = [n for n, (host, _) in advertised.items() if host == "127.0.0.1"]
    assert len(internal) == 1, f"{name}: no listener advertised by its name to the containers"
    assert len(host_side) == 1, f"{name}: no listener advertised on 127.0.0.1 for the host"
    assert env.get("KAFKA_INTER_BROKER_LISTENER_NAME", "PLAINTEXT") == internal[0]
    # the host's listener: published on the host's loopback only, at the port advertised
    _, container_port = bound[host_side[0]]
    _, advertised_port = advertised[host_side[0]]
    assert published(broker).get(container_port) == ("127.0.0.1", advertised_port)
    assert broker["healthcheck"]["test"], f"{name} has no health check"


def test_the_one_node_broker_is_reached_from_the_host_at_the_readme_address() -> None:
    kafka = compose()["services"]["kafka"]
    advertised = listeners(kafka["environment"]["KAFKA_ADVERTISED_LISTENERS"])
    assert HOST_BOOTSTRAP in {f"{host}:{port}" for host, port in advertised.values()}
    assert f"KAFKA_BOOTSTRAP_SERVERS={HOST_BOOTSTRAP}" in (ROOT / "docker-compose.yml").read_text()


@pytest.mark.parametrize("name", sorted(services("worker")))
def test_every_worker_restarts_has_its_own_identity_and_waits_for_healthy_brokers(
    name: str,
) -> None:
    worker = services("worker")[name]
    brokers = services("broker")
    env = worker["environment"]
    assert worker["restart"] == "unless-stopped"
    assert env["SHOP_INSTANCE_ID"] == worker["hostname"] == name
    # it bootstraps from its brokers' container listeners, and waits for them
    internal = {
        f"{host}:{port}"
        for broker in brokers.values()
        for host, port in listeners(broker["environment"]["KAFKA_ADVERTISED_LISTENERS"]).values()
        if host != "127.0.0.1"
    }
    bootstrap = str(env["KAFKA_BOOTSTRAP_SERVERS"]).split(",")
    assert set(bootstrap) <= internal
    waited = {host.split(":")[0] for host in bootstrap}
    assert worker["depends_on"] == {broker: {"condition": "service_healthy"} for broker in waited}
    # its health check is the image's (Dockerfile), not switched off here
    assert "healthcheck" not in worker
    assert worker["build"] == "."


def test_workers_do_not_share_an_instance_id_nor_a_host_port() -> None:
    workers = services("worker").values()
    ids = [w["environment"]["SHOP_INSTANCE_ID"] for w in workers]
    ports = [port for w in workers for port in published(w).values()]
    assert len(ids) == len(set(ids))
    assert len(ports) == len(set(ports))


# --- the Dockerfile ------------------------------------------------------------------


def instructions() -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) in order, continuation lines joined, comments left out."""
    found: list[tuple[str, str]] = []
    pending = ""
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.lstrip().startswith("#") or not line.strip():
            continue
        pending += line.rstrip()
        if pending.endswith("\\"):
            pending = pending[:-1] + " "
            continue
        keyword, _, arguments = pending.strip().partition(" ")
        found.append((keyword.upper(), arguments.strip()))
        pending = ""
    return found


def arguments_of(keyword: str) -> list[str]:
    return [arguments for found, arguments in instructions() if found == keyword]


def exec_form(arguments: str) -> list[str]:
    parsed: list[str] = json.loads(arguments)
    return parsed


def test_the_image_runs_as_an_unprivileged_user() -> None:
    users = arguments_of("USER")
    assert users, "no USER: the image runs as root"
    user, _, group = users[-1].partition(":")
    assert user not in {"root", "0"} and group not in {"root", "0"}
    # every RUN is before it (the build's own steps run as root, nothing else), and the
    # user is created with that number (numeric, so runAsNonRoot-style checks can verify it)
    keywords = [keyword for keyword, _ in instructions()]
    assert "RUN" not in keywords[keywords.index("USER") :]
    assert user.isdigit() and re.search(rf"--uid {user}\b", " ".join(arguments_of("RUN")))


def test_the_image_checks_its_health_on_the_workers_readiness_endpoint() -> None:
    checks = arguments_of("HEALTHCHECK")
    assert len(checks) == 1 and "NONE" not in checks[0].upper()
    command = checks[0].split("CMD", 1)[1].strip()
    port = exec_form(arguments_of("CMD")[-1])
    web_port = port[port.index("-p") + 1]
    assert f"http://127.0.0.1:{web_port}/health" in command
    assert re.search(r"--start-period=\d+s", checks[0]), "a starting worker is not unhealthy"


def pip_installs() -> list[str]:
    return [
        step
        for run in arguments_of("RUN")
        for step in run.split("&&")
        if re.search(r"\bpip install\b", step)
    ]


def test_the_image_installs_at_the_pinned_versions() -> None:
    installs = pip_installs()
    assert installs, "the image installs nothing with pip"
    for step in installs:
        assert "-c constraints.txt" in step, f"unpinned: {step.strip()}"
    copied = {
        source for arguments in arguments_of("COPY") for source in shlex.split(arguments)[:-1]
    }
    assert "constraints.txt" in copied


def test_ci_installs_at_the_same_pinned_versions() -> None:
    bootstrap = (ROOT / "scripts" / "bootstrap.sh").read_text()
    installs = [line for line in bootstrap.splitlines() if "pip install" in line]
    assert installs and all("-c constraints.txt" in line for line in installs)
    # a new constraints.txt reinstalls (the stamp covers it)
    assert "constraints.txt | sha256sum" in bootstrap


def setuptools_packages() -> list[str]:
    pyproject = tomllib.loads((ROOT / "pyproject.toml").read_text())
    packages: list[str] = pyproject["tool"]["setuptools"]["packages"]
    return packages


def in_build_context(path: str) -> bool:
    """Whether .dockerignore lets a top-level file or folder into the build context:
    the last pattern that matches it decides, `!` letting it in (Docker's rule)."""
    included = True
    for line in (ROOT / ".dockerignore").read_text().splitlines():
        pattern = line.strip()
        if not pattern or pattern.startswith("#"):
            continue
        negated = pattern.startswith("!")
        pattern = pattern.lstrip("!").rstrip("/")
        if fnmatch.fnmatchcase(path, pattern):
            included = negated
    return included


def test_the_image_holds_the_project_and_not_the_benches_nor_the_tests() -> None:
    copied = {
        source for arguments in arguments_of("COPY") for source in shlex.split(arguments)[:-1]
    }
    for package in setuptools_packages():
        assert package in copied and in_build_context(package), package
    for needed in ("pyproject.toml", "README.md", "constraints.txt"):
        assert in_build_context(needed), needed
    for left_out in ("bench", "tests", ".venv", ".git", ".kafka", ".data"):
        assert left_out not in copied and not in_build_context(left_out), left_out
    # bench/ and tests/ are run from a checkout: not installed, so the image needs neither
    assert "bench" not in setuptools_packages() and "tests" not in setuptools_packages()
