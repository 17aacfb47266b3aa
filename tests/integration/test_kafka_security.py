"""Kafka security against a real broker: a worker on a SASL_SSL listener with SCRAM
answers commands; a wrong password stops a worker at once, in one line; each SASL
mechanism logs in; an untrusted broker certificate is named; mutual TLS shows the
client certificate.

The module starts its own broker (scripts/kafka.sh with a SASL_SSL listener and an
SSL listener that requires a client certificate, on free ports, its own data dir),
with certificates made here by openssl; the shared broker is not touched. The two
workers start together, so their start-ups overlap.
"""

from __future__ import annotations

import asyncio
import base64
import os
import re
import subprocess
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from typing import Any

import httpx
import pytest
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import KafkaConnectionError

from app.kafka_clients import SECURITY_VARIABLES, check_login, client_options
from app.settings import Settings
from models.envelope import EventEnvelope
from tests.certificates import KEY_PASSWORD, Certificates, make_certificates
from tests.system import ROOT, System, Worker, free_port

pytestmark = pytest.mark.integration

USER, PASSWORD = "shop", "s3cret-pw"


@dataclass(frozen=True)
class SecuredBroker:
    sasl_ssl: str
    """Bootstrap servers of the SASL_SSL listener (SCRAM-SHA-256/512 and PLAIN logins)."""
    ssl: str
    """Bootstrap servers of the SSL listener that requires a client certificate."""


@pytest.fixture(autouse=True)
def _no_security_env(monkeypatch: pytest.MonkeyPatch) -> None:
    """This process's own settings are not the ones under test."""
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


@pytest.fixture(scope="module")
def broker(
    certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[SecuredBroker]:
    port, controller, sasl_ssl, ssl = (free_port() for _ in range(4))
    env = {
        **os.environ,
        "KAFKA_PORT": str(port),
        "KAFKA_CONTROLLER_PORT": str(controller),
        "KAFKA_SASL_SSL_PORT": str(sasl_ssl),
        "KAFKA_SSL_PORT": str(ssl),
        "KAFKA_DATA_DIR": str(tmp_path_factory.mktemp("secured-broker")),
        "KAFKA_BROKER_KEYSTORE": str(certificates.broker),
        "KAFKA_BROKER_TRUSTSTORE": str(certificates.ca),
        "KAFKA_SASL_USERS": f"{USER}:{PASSWORD}",
        # a cluster id made here spares a JVM start; C1 only starts the JVM faster
        "KAFKA_CLUSTER_ID": base64.urlsafe_b64encode(uuid.uuid4().bytes).decode().rstrip("="),
        "KAFKA_HEAP_OPTS": "-Xms128m -Xmx512m -XX:TieredStopAtLevel=1",
    }
    script = str(ROOT / "scripts" / "kafka.sh")
    subprocess.run([script, "start"], env=env, check=True)
    try:
        yield SecuredBroker(sasl_ssl=f"127.0.0.1:{sasl_ssl}", ssl=f"127.0.0.1:{ssl}")
    finally:  # its data is thrown away: no need for a clean stop
        subprocess.run([script, "kill"], env=env, check=False)


def scram_env(broker: SecuredBroker, certificates: Certificates, password: str) -> dict[str, str]:
    return {
        "KAFKA_BOOTSTRAP_SERVERS": broker.sasl_ssl,
        "KAFKA_SECURITY_PROTOCOL": "SASL_SSL",
        "KAFKA_SASL_MECHANISM": "SCRAM-SHA-512",
        "KAFKA_SASL_USERNAME": USER,
        "KAFKA_SASL_PASSWORD": password,
        "KAFKA_SSL_CAFILE": str(certificates.ca),
    }


@pytest.fixture(scope="module")
def workers(
    broker: SecuredBroker, certificates: Certificates, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[System, Worker, Worker]]:
    """(the system, its worker with the right login, a worker with a wrong password),
    both started at once."""
    right_login = scram_env(broker, certificates, PASSWORD)
    wrong_login = scram_env(broker, certificates, "not-the-password")
    system = System(tmp_path_factory.mktemp("scram"), 2, **right_login)
    refused = System(tmp_path_factory.mktemp("refused"), 2, **wrong_login)
    wrong = refused.worker()
    right = system.worker()
    yield system, right, wrong
    for worker in (right, wrong):  # SIGKILL: the broker and its topics go with the module
        worker.kill()


def test_a_worker_on_sasl_ssl_with_scram_answers_a_command_and_logs_its_event(
    workers: tuple[System, Worker, Worker],
) -> None:
    system, worker, _ = workers
    worker.wait_ready(timeout=120)
    opened = httpx.post(
        f"{worker.url}/accounts", json={"account_id": "tls-ann", "owner": "Ann"}, timeout=30.0
    )
    assert opened.status_code == 201, opened.text
    # read back over SASL_SSL too: the harness connects as the system's workers do
    events = [
        EventEnvelope.model_validate_json(raw) for raw in system.read_topic("accounts.events")
    ]
    assert [(e.aggregate_id, e.event_type) for e in events] == [("tls-ann", "AccountOpened")]


def test_a_wrong_password_stops_the_worker_with_one_line_naming_the_user(
    workers: tuple[System, Worker, Worker],
) -> None:
    _, _, worker = workers
    assert worker.process is not None
    assert worker.process.wait(timeout=120) != 0
    log = worker.log_path.read_text(errors="replace")
    last = log.strip().splitlines()[-1]
    assert last.startswith(f"Kafka authentication failed for user '{USER}' (SCRAM-SHA-512 at ")
    assert "invalid credentials" in last
    assert "Traceback" not in log


def secured(broker: SecuredBroker, certificates: Certificates, **fields: Any) -> Settings:
    login: dict[str, Any] = {
        "bootstrap_servers": broker.sasl_ssl,
        "kafka_security_protocol": "SASL_SSL",
        "kafka_sasl_username": USER,
        "kafka_ssl_cafile": str(certificates.ca),
    }
    return Settings(**{**login, **fields})


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_each_mechanism_logs_in_and_refuses_a_wrong_password(
    broker: SecuredBroker, certificates: Certificates, mechanism: str
) -> None:
    login = {"kafka_sasl_mechanism": mechanism}
    asyncio.run(check_login(secured(broker, certificates, kafka_sasl_password=PASSWORD, **login)))
    wrong = secured(broker, certificates, kafka_sasl_password="nope", **login)
    refusal = re.escape(f"authentication failed for user '{USER}' ({mechanism} at")
    with pytest.raises(SystemExit, match=refusal):
        asyncio.run(check_login(wrong))


def test_a_broker_certificate_the_system_cas_do_not_trust_is_named(
    broker: SecuredBroker, certificates: Certificates
) -> None:
    untrusted = secured(broker, certificates, kafka_ssl_cafile="", kafka_sasl_password=PASSWORD)
    refusal = r"certificate does not verify \(unable to get local issuer .*KAFKA_SSL_CAFILE"
    with pytest.raises(SystemExit, match=refusal):
        asyncio.run(check_login(untrusted))


async def _create_and_list(options: dict[str, Any], topic: str) -> list[str]:
    admin = AIOKafkaAdminClient(**options)
    await admin.start()
    try:
        await admin.create_topics([NewTopic(topic, num_partitions=1, replication_factor=1)])
        # The controller answers the create before the broker that answers the
        # listing has applied it to its metadata cache; a listing taken at once can
        # miss the topic (seen in CI), so wait a few seconds for it to show.
        topics: list[str] = []
        for _ in range(50):
            topics = list(await admin.list_topics())
            if topic in topics:
                break
            await asyncio.sleep(0.2)
        return topics
    finally:
        await admin.close()


def test_mutual_tls_shows_the_client_certificate(
    broker: SecuredBroker, certificates: Certificates
) -> None:
    tls: dict[str, Any] = {
        "bootstrap_servers": broker.ssl,
        "kafka_security_protocol": "SSL",
        "kafka_ssl_cafile": str(certificates.ca),
    }
    with_certificate = Settings(
        **tls,
        kafka_ssl_certfile=str(certificates.client_cert),
        kafka_ssl_keyfile=str(certificates.client_key),
        kafka_ssl_key_password=KEY_PASSWORD,
    )
    assert "mtls" in asyncio.run(_create_and_list(client_options(with_certificate), "mtls"))
    with pytest.raises(KafkaConnectionError, match="Unable to bootstrap"):  # hung up on
        asyncio.run(_create_and_list(client_options(Settings(**tls)), "no-certificate"))
