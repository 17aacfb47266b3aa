"""An isolated shop on this machine: a broker, and faust workers as subprocesses.

The one launcher of the benches and of the tests (tests/system.py re-exports
it: the benches ship, tests/ does not). Each `System` is an isolated namespace
on the shared broker (its own app id, so its own consumer group and changelogs,
and its own topic prefix), so test modules and bench runs never see each
other's events. Workers are real `faust -A app.worker worker` processes, so they can
be killed with SIGKILL and restarted.
"""

from __future__ import annotations

import asyncio
import atexit
import os
import random
import signal
import socket
import subprocess
import sys
import time
import urllib.error
import urllib.request
import uuid
from collections.abc import Mapping
from http.client import HTTPException
from pathlib import Path
from typing import Any

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient

from app.kafka_clients import SECURITY_VARIABLES, client_options
from app.settings import Settings

ROOT = Path(__file__).resolve().parent.parent
DEFAULT_BOOTSTRAP = "127.0.0.1:9092"


def bootstrap_servers() -> str:
    return os.environ.get("KAFKA_BOOTSTRAP_SERVERS", DEFAULT_BOOTSTRAP)


def reachable(bootstrap: str, timeout: float = 1.0) -> bool:
    host, _, port = bootstrap.split(",")[0].rpartition(":")
    try:
        with socket.create_connection((host or "127.0.0.1", int(port)), timeout=timeout):
            return True
    except OSError:
        return False


def ensure_broker() -> str:
    """The broker to use: KAFKA_BOOTSTRAP_SERVERS, or a local one started by scripts/kafka.sh,
    which is stopped again when this process exits (what starts a broker stops it)."""
    bootstrap = bootstrap_servers()
    if not reachable(bootstrap):
        port = bootstrap.rpartition(":")[2]
        env = {**os.environ, "KAFKA_PORT": port}
        subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "start"], check=True, env=env)
        atexit.register(_stop_broker, env)
    return bootstrap


def _stop_broker(env: dict[str, str]) -> None:
    print("stopping the Kafka broker this run started", flush=True)
    subprocess.run([str(ROOT / "scripts" / "kafka.sh"), "stop"], check=False, env=env)


NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))
"""Local workers are asked directly, whatever proxy the environment names."""


def get(url: str, timeout: float) -> tuple[int, str]:
    """(status, body) of a GET. A blocking probe: it is called outside any event loop and
    inside running ones (a bench's coroutine), so the standard library does it."""
    try:
        with NO_PROXY.open(url, timeout=timeout) as response:
            return response.status, response.read().decode(errors="replace")
    except urllib.error.HTTPError as error:  # an answer all the same, other than 2xx
        with error:
            return error.code, error.read().decode(errors="replace")


def ephemeral_ports() -> range:
    """The ports the kernel gives outgoing connections (Linux's default if unreadable)."""
    try:
        low, high = Path("/proc/sys/net/ipv4/ip_local_port_range").read_text().split()
        return range(int(low), int(high) + 1)
    except (OSError, ValueError):
        return range(32768, 61000)


def free_port() -> int:
    """A port free now and outside the kernel's ephemeral range. A port of that range
    (what binding to port 0 gives) can be taken by any client's outgoing connection (the
    workers' and tests' Kafka clients open hundreds) while its worker is down, and the
    worker restarted on it would fail to bind: "address already in use"."""
    start = ephemeral_ports().start
    candidates = range(max(1024, start - 16384), start)
    for port in random.sample(candidates, min(200, len(candidates))):
        with socket.socket() as s:
            try:
                s.bind(("127.0.0.1", port))
            except OSError:
                continue
            return port
    raise RuntimeError(f"no free port in {candidates}")


async def read_values(
    connection: str | Mapping[str, Any], topic: str, partitions: int
) -> list[bytes]:
    """Every value of `topic` from the beginning to the end offsets read at the start.
    `connection`: bootstrap servers, or a client's whole options (`System.client_options`)."""
    return [
        r.value for r in await read_records(connection, topic, partitions) if r.value is not None
    ]


async def read_records(
    connection: str | Mapping[str, Any], topic: str, partitions: int
) -> list[Any]:
    """Every record of `topic` (aiokafka's ConsumerRecord: value, headers, offsets) from
    the beginning to the end offsets read at the start."""
    options = {"bootstrap_servers": connection} if isinstance(connection, str) else connection
    consumer = AIOKafkaConsumer(enable_auto_commit=False, **options)
    await consumer.start()
    try:
        assigned = [TopicPartition(topic, p) for p in range(partitions)]
        consumer.assign(assigned)
        await consumer.seek_to_beginning(*assigned)
        ends = await consumer.end_offsets(assigned)
        records: list[Any] = []
        while [tp for tp in assigned if await consumer.position(tp) < ends[tp]]:
            batches = await consumer.getmany(timeout_ms=500)
            for batch in batches.values():
                records.extend(batch)
        return records
    finally:
        await consumer.stop()


class Worker:
    """One `shop worker` process (`faust -A app.worker worker`) with its own data dir, web
    port and instance id."""

    def __init__(self, system: System, name: str, port: int | None = None) -> None:
        self.system = system
        self.name = name
        self.port = port or free_port()
        self.datadir = system.workdir / name
        self.log_path = system.workdir / f"{name}.log"
        self.process: subprocess.Popen[bytes] | None = None

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    def start(self) -> Worker:
        env = {**os.environ, **self.system.env}
        log = open(self.log_path, "ab")  # noqa: SIM115 - the child owns it
        # `shop worker` as an operator runs it (it execs faust: the same process)
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "app.cli",
                "worker",
                "--data-dir",
                str(self.datadir),
                "--port",
                str(self.port),
                "--instance-id",
                self.name,
            ],
            cwd=ROOT,
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
        )
        return self

    def answers_ready(self) -> bool:
        """/health answers 200: every command side and fold reached its log's end."""
        try:
            return get(f"{self.url}/health", timeout=2.0)[0] == 200
        except (OSError, HTTPException):
            return False

    def wait_ready(self, timeout: float = 90.0) -> Worker:
        deadline = time.monotonic() + timeout
        last: Any = None
        while time.monotonic() < deadline:
            if self.process is not None and self.process.poll() is not None:
                raise RuntimeError(f"worker {self.name} exited:\n{self.tail()}")
            try:
                status, last = get(f"{self.url}/health", timeout=2.0)
                if status == 200:
                    return self
            except (OSError, HTTPException) as error:  # URLError, timeouts, resets
                last = repr(error)
            time.sleep(0.3)
        raise TimeoutError(f"{self.name} not ready after {timeout}s ({last}):\n{self.tail()}")

    def kill(self, sig: int = signal.SIGKILL) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.send_signal(sig)
            try:
                self.process.wait(timeout=60)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait()

    def stop(self) -> None:
        self.kill(signal.SIGTERM)

    def restart(self) -> Worker:
        """Start again with the same name, port and data dir (after a kill or stop)."""
        self.kill()
        return self.start()

    def tail(self, lines: int = 60) -> str:
        try:
            return "\n".join(self.log_path.read_text(errors="replace").splitlines()[-lines:])
        except FileNotFoundError:
            return "(no log)"


class System:
    """An isolated copy of the shop on the shared broker (or on the one `env` names in
    KAFKA_BOOTSTRAP_SERVERS, reached with the KAFKA_SECURITY_PROTOCOL... it gives)."""

    def __init__(self, workdir: Path, partitions: int = 8, **env: str) -> None:
        self.id = f"t{uuid.uuid4().hex[:10]}"
        self.workdir = workdir
        self.bootstrap = env.get("KAFKA_BOOTSTRAP_SERVERS") or ensure_broker()
        self.env = {
            "KAFKA_BOOTSTRAP_SERVERS": self.bootstrap,
            "SHOP_APP_ID": self.id,
            "SHOP_TOPIC_PREFIX": f"{self.id}.",
            "SHOP_PARTITIONS": str(partitions),
            "PYTHONUNBUFFERED": "1",
            **env,
        }
        self.workers: list[Worker] = []

    def topic(self, name: str) -> str:
        return f"{self.id}.{name}"

    def client_options(self) -> dict[str, Any]:
        """What an aiokafka client of this harness takes to reach the broker as the
        system's workers do: their security settings are this process's environment
        overlaid with the system's, as in their own environment."""
        given: dict[str, Any] = {
            name.lower(): self.env[name] for name in SECURITY_VARIABLES if name in self.env
        }
        return client_options(Settings(bootstrap_servers=self.bootstrap, **given))

    def worker(self, name: str | None = None, port: int | None = None) -> Worker:
        worker = Worker(self, name or f"w{len(self.workers) + 1}", port)
        self.workers.append(worker)
        return worker.start()

    def stop(self) -> None:
        for worker in self.workers:
            worker.stop()
        self.delete_topics()

    def read_topic(self, name: str, partitions: int | None = None) -> list[bytes]:
        """Every value of this system's topic `name`, straight from Kafka."""
        count = partitions or int(self.env["SHOP_PARTITIONS"])
        return asyncio.run(read_values(self.client_options(), self.topic(name), count))

    def read_records(self, name: str, partitions: int | None = None) -> list[Any]:
        """Every record (values and headers) of this system's topic `name`, from Kafka."""
        count = partitions or int(self.env["SHOP_PARTITIONS"])
        return asyncio.run(read_records(self.client_options(), self.topic(name), count))

    def delete_topics(self) -> None:
        """Delete this system's topics: a broker holds open files for every partition,
        and a test run makes thousands of them. SHOP_KEEP_TOPICS=1 keeps them, to
        read a failed run's log afterwards."""
        if os.environ.get("SHOP_KEEP_TOPICS"):
            print(f"kept the topics of {self.id}")
            return

        async def delete() -> None:
            admin = AIOKafkaAdminClient(**self.client_options())
            await admin.start()
            try:
                mine = [t for t in await admin.list_topics() if t.startswith(self.id)]
                if mine:
                    await admin.delete_topics(mine)
            finally:
                await admin.close()

        try:
            asyncio.run(delete())
        except Exception as error:  # cleanup must not hide the test's own outcome
            print(f"could not delete the topics of {self.id}: {error!r}")
