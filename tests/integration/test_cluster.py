"""A 3-broker cluster (scripts/kafka-cluster.sh): the app's topics get 3 replicas and
min.insync.replicas 2, so a write with acks=all survives one broker down, is refused
with two down, and goes through again once they are back.

The cluster is its own (free ports, data under pytest's tmp), whatever broker
KAFKA_BOOTSTRAP_SERVERS names; it is stopped at the end, pass or fail.
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import socket
import subprocess
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from aiokafka import AIOKafkaProducer
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.admin.config_resource import ConfigResource, ConfigResourceType
from aiokafka.errors import (
    KafkaTimeoutError,
    NotEnoughReplicasAfterAppendError,
    NotEnoughReplicasError,
    RequestTimedOutError,
)

from tests.system import ROOT, read_values

pytestmark = pytest.mark.integration

SCRIPT = ROOT / "scripts" / "kafka-cluster.sh"
APP_ID = "clustertest"
TOPIC_CONFIG = 1
"""DescribeConfigs' source of a value set on the topic itself (not a broker default)."""
REFUSED = (
    NotEnoughReplicasError,
    NotEnoughReplicasAfterAppendError,
    RequestTimedOutError,
    KafkaTimeoutError,
    TimeoutError,
)
"""How a write with acks=all fails when fewer than min.insync.replicas copies can take it."""


class Cluster:
    def __init__(self, workdir: Path) -> None:
        self.base = _free_base()
        self.env = {
            **os.environ,
            "KAFKA_CLUSTER_PORT": str(self.base),
            "KAFKA_CLUSTER_DIR": str(workdir),
        }
        self.bootstrap = ",".join(f"127.0.0.1:{self.base + i}" for i in range(3))

    def run(self, *args: str) -> None:
        subprocess.run([str(SCRIPT), *args], env=self.env, check=True, timeout=180)

    def start_nodes(self, *nodes: int) -> None:
        """Start these nodes again, side by side."""
        starts = [
            subprocess.Popen([str(SCRIPT), "start-node", str(node)], env=self.env) for node in nodes
        ]
        assert [start.wait(timeout=180) for start in starts] == [0] * len(nodes)


def _free_base() -> int:
    """A port base whose three client and three controller ports are free, below the
    ephemeral range (an outgoing connection there could take a port before its node)."""
    try:
        ephemeral = int(Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()[0])
    except (OSError, ValueError, IndexError):
        ephemeral = 32768
    for _ in range(50):
        base = random.randrange(10000, ephemeral - 200)
        ports = [base + i for i in (0, 1, 2, 100, 101, 102)]
        try:
            for port in ports:
                with socket.socket() as s:
                    s.bind(("127.0.0.1", port))
        except OSError:
            continue
        return base
    raise RuntimeError("no free port base")


@pytest.fixture(scope="module")
def cluster(tmp_path_factory: pytest.TempPathFactory) -> Iterator[Cluster]:
    cluster = Cluster(tmp_path_factory.mktemp("cluster"))
    try:
        cluster.run("start")
        yield cluster
    finally:
        subprocess.run([str(SCRIPT), "stop"], env=cluster.env, check=False, timeout=120)


@pytest.fixture(scope="module")
def topics(cluster: Cluster) -> list[str]:
    """The app's own provisioning, run as a worker would with SHOP_REPLICATION_FACTOR=3;
    the names of every topic it wanted."""
    env = {
        **os.environ,
        "KAFKA_BOOTSTRAP_SERVERS": cluster.bootstrap,
        "SHOP_REPLICATION_FACTOR": "3",
        "SHOP_APP_ID": APP_ID,
        "SHOP_TOPIC_PREFIX": f"{APP_ID}.",
    }
    env.pop("SHOP_MIN_INSYNC_REPLICAS", None)
    script = (
        "import asyncio, json, app\n"
        "from app.provisioning import declare_topics, wanted_topics\n"
        "asyncio.run(declare_topics())\n"
        "print(json.dumps(sorted(wanted_topics())))\n"
    )
    done = subprocess.run(
        [sys.executable, "-c", script],
        env=env,
        cwd=ROOT,
        check=True,
        capture_output=True,
        text=True,
        timeout=120,
    )
    names: list[str] = json.loads(done.stdout.strip().splitlines()[-1])
    return names


async def _describe(bootstrap: str, names: list[str]) -> tuple[list[Any], list[Any]]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        described = await admin.describe_topics(names)
        wanted = {"min.insync.replicas": None}
        configs = await admin.describe_configs(
            [ConfigResource(ConfigResourceType.TOPIC, name, wanted) for name in names]
        )
        return described, [resource for response in configs for resource in response.resources]
    finally:
        await admin.close()


async def _produce(bootstrap: str, topic: str, value: bytes, timeout_ms: int) -> None:
    producer = AIOKafkaProducer(
        bootstrap_servers=bootstrap, acks="all", request_timeout_ms=timeout_ms
    )
    await producer.start()
    try:
        await asyncio.wait_for(
            producer.send_and_wait(topic, value, partition=0), timeout_ms / 1000 + 5
        )
    finally:
        await producer.stop()


def test_every_topic_has_three_replicas_and_two_in_sync(
    cluster: Cluster, topics: list[str]
) -> None:
    assert f"{APP_ID}.accounts.events" in topics
    assert f"{APP_ID}-__assignor-__leader" in topics
    described, configs = asyncio.run(_describe(cluster.bootstrap, topics))
    assert sorted(t["topic"] for t in described if t["error_code"] == 0) == topics
    replicas = {
        (t["topic"], p["partition"]): len(p["replicas"]) for t in described for p in t["partitions"]
    }
    assert set(replicas.values()) == {3}, replicas
    min_isr = {
        resource[3]: [(value, source) for name, value, _, source, *_ in resource[4]]
        for resource in configs
    }
    assert min_isr == {name: [("2", TOPIC_CONFIG)] for name in topics}


def test_acks_all_survives_one_broker_down_not_two(cluster: Cluster, topics: list[str]) -> None:
    topic = f"{APP_ID}.deadletters"  # one partition: one leader to find
    described, _ = asyncio.run(_describe(cluster.bootstrap, [topic]))
    leader = described[0]["partitions"][0]["leader"]
    asyncio.run(_produce(cluster.bootstrap, topic, b"all up", 20_000))

    cluster.run("kill", str(leader))  # the partition's leader, crashed
    asyncio.run(_produce(cluster.bootstrap, topic, b"one down", 30_000))

    # the new leader stays up: the write then has a leader, and only one copy of it
    described, _ = asyncio.run(_describe(cluster.bootstrap, [topic]))
    second = ({1, 2, 3} - {leader, described[0]["partitions"][0]["leader"]}).pop()
    cluster.run("kill", str(second))
    with pytest.raises(REFUSED):  # in practice RequestTimedOut: the leader waits for its ISR
        asyncio.run(_produce(cluster.bootstrap, topic, b"two down", 3_000))

    cluster.start_nodes(leader, second)
    asyncio.run(_produce(cluster.bootstrap, topic, b"all back", 30_000))
    values = asyncio.run(read_values(cluster.bootstrap, topic, 1))
    assert {b"all up", b"one down", b"all back"} <= set(values)
