"""The recipes for running workers under a supervisor (ops/systemd, ops/kubernetes)
hold what static membership and the drain need: each worker a name of its own that
survives its restarts, a restart when it dies, a stop that leaves the drain its time,
and a command `shop worker` accepts."""

from __future__ import annotations

import configparser
from pathlib import Path
from typing import Any

import yaml

from app.cli import build_parser
from app.settings import settings

ROOT = Path(__file__).resolve().parents[2]
SYSTEMD_UNIT = ROOT / "ops" / "systemd" / "shop-worker@.service"
KUBERNETES = ROOT / "ops" / "kubernetes" / "shop-worker.yaml"


def systemd_unit() -> configparser.ConfigParser:
    unit = configparser.ConfigParser(interpolation=None, strict=False)
    unit.optionxform = str  # type: ignore[assignment,method-assign]  # keys keep their case
    unit.read_string(SYSTEMD_UNIT.read_text())
    return unit


def test_the_systemd_unit_runs_a_named_worker_per_port_and_restarts_it() -> None:
    service = systemd_unit()["Service"]
    executable, *arguments = service["ExecStart"].split()
    assert executable.endswith("/shop")
    # %i is the unit's instance (the port), %H the host's name
    for port, host in (("6066", "node-1"), ("6067", "node-1")):
        expanded = [a.replace("%i", port).replace("%H", host) for a in arguments]
        args = build_parser().parse_args(expanded)
        assert args.command == "worker" and args.port == int(port)
        assert args.instance_id == f"{host}-{port}"  # the same across its restarts
        assert str(args.data_dir).endswith(f"/{port}")
    assert service["Restart"] in ("on-failure", "always")
    assert service["KillSignal"] == "SIGTERM"
    assert float(service["TimeoutStopSec"]) > settings.command_timeout  # the drain's time


def kubernetes_objects() -> dict[str, list[dict[str, Any]]]:
    objects: dict[str, list[dict[str, Any]]] = {}
    for document in yaml.safe_load_all(KUBERNETES.read_text()):
        objects.setdefault(document["kind"], []).append(document)
    return objects


def test_the_statefulset_names_each_worker_after_its_pod_and_gives_it_a_volume() -> None:
    objects = kubernetes_objects()
    (statefulset,) = objects["StatefulSet"]
    spec = statefulset["spec"]
    pod = spec["template"]["spec"]
    (container,) = pod["containers"]
    env = {e["name"]: e for e in container["env"]}
    assert env["POD_NAME"]["valueFrom"]["fieldRef"]["fieldPath"] == "metadata.name"
    # Kubernetes expands $(POD_NAME) in the command: the pod's stable name
    command = [a.replace("$(POD_NAME)", "shop-worker-0") for a in container["command"]]
    assert command[0] == "shop"
    args = build_parser().parse_args(command[1:])
    assert args.instance_id == "shop-worker-0"
    # the name other workers forward requests to: the pod's DNS name in the headless
    # service, which lists pods before they are ready
    headless = [s for s in objects["Service"] if s["spec"].get("clusterIP") == "None"]
    assert [s["metadata"]["name"] for s in headless] == [spec["serviceName"]]
    assert headless[0]["spec"]["publishNotReadyAddresses"] is True
    assert args.host == f"shop-worker-0.{spec['serviceName']}"
    # its data dir is a volume of its own, kept across restarts
    (claim,) = spec["volumeClaimTemplates"]
    mounts = {m["name"]: m["mountPath"] for m in container["volumeMounts"]}
    assert str(args.data_dir) == mounts[claim["metadata"]["name"]]
    # ready when /health says so; the drain has its time before SIGKILL
    probe = container["readinessProbe"]["httpGet"]
    assert (probe["path"], probe["port"]) == ("/health", args.port)
    assert pod["terminationGracePeriodSeconds"] > settings.command_timeout
    assert pod["securityContext"]["runAsUser"] == 10001  # the image's user
