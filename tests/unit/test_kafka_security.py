"""Kafka security settings: each protocol turns into the client options aiokafka takes,
faust's clients get the very same, the TLS context trusts the CA file and shows the
client certificate, and a setting that cannot work stops the worker naming its variable.

(Against a real broker: tests/integration/test_kafka_security.py.)"""

from __future__ import annotations

import asyncio
import ssl
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
from faust.transport.drivers.aiokafka import credentials_to_aiokafka_auth

from app import kafka_clients
from app.kafka_clients import (
    SECURITY_VARIABLES,
    check_login,
    client_options,
    security_options,
)
from app.main import faust_credentials
from app.settings import Settings
from bench.local_shop import System
from tests.certificates import KEY_PASSWORD, Certificates, make_certificates


@pytest.fixture(autouse=True)
def _no_security_env(monkeypatch: pytest.MonkeyPatch) -> None:
    for name in SECURITY_VARIABLES:
        monkeypatch.delenv(name, raising=False)


@pytest.fixture(scope="module")
def certificates(tmp_path_factory: pytest.TempPathFactory) -> Certificates:
    return make_certificates(tmp_path_factory.mktemp("certs"))


LOGIN: dict[str, Any] = {"kafka_sasl_username": "shop", "kafka_sasl_password": "pw"}


def test_plaintext_is_the_bootstrap_servers_alone() -> None:
    assert client_options(Settings(bootstrap_servers="k1:9092,k2:9092")) == {
        "bootstrap_servers": "k1:9092,k2:9092",
        "security_protocol": "PLAINTEXT",
    }


@pytest.mark.parametrize("mechanism", ["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"])
def test_sasl_plaintext_logs_in_with_the_mechanism_and_no_tls(mechanism: str) -> None:
    config = Settings(
        kafka_security_protocol="SASL_PLAINTEXT", kafka_sasl_mechanism=mechanism, **LOGIN
    )
    assert security_options(config) == {
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": mechanism,
        "sasl_plain_username": "shop",
        "sasl_plain_password": "pw",
    }


def test_sasl_ssl_logs_in_over_tls_trusting_the_ca_file(certificates: Certificates) -> None:
    config = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_sasl_mechanism="SCRAM-SHA-512",
        kafka_ssl_cafile=str(certificates.ca),
        **LOGIN,
    )
    options = security_options(config)
    context = options.pop("ssl_context")
    assert options == {
        "security_protocol": "SASL_SSL",
        "sasl_mechanism": "SCRAM-SHA-512",
        "sasl_plain_username": "shop",
        "sasl_plain_password": "pw",
    }
    assert context.verify_mode == ssl.CERT_REQUIRED and context.check_hostname
    trusted = [dict(pair[0] for pair in ca["subject"]) for ca in context.get_ca_certs()]
    assert trusted == [{"commonName": "shop test CA"}]


def test_ssl_without_a_ca_file_trusts_the_system_cas_and_has_no_login() -> None:
    options = security_options(Settings(kafka_security_protocol="SSL"))
    assert set(options) == {"security_protocol", "ssl_context"}
    assert options["ssl_context"].verify_mode == ssl.CERT_REQUIRED


async def _peer_of_handshake(certificates: Certificates, client: ssl.SSLContext) -> Any:
    """The certificate a TLS server that requires one (signed by the test CA) gets from
    a client connecting with `client`."""
    server = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH, cafile=certificates.ca)
    server.load_cert_chain(certificates.broker_cert, certificates.broker_key)
    server.verify_mode = ssl.CERT_REQUIRED
    peers: list[Any] = []
    served = asyncio.Event()

    async def serve(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
        peers.append(writer.get_extra_info("peercert"))
        served.set()
        writer.close()

    listening = await asyncio.start_server(serve, "127.0.0.1", 0, ssl=server)
    port = listening.sockets[0].getsockname()[1]
    async with listening:
        _, writer = await asyncio.open_connection("127.0.0.1", port, ssl=client)
        await served.wait()
        writer.close()
    return peers[0]


async def test_the_client_certificate_is_shown_to_a_server_that_asks(
    certificates: Certificates,
) -> None:
    config = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_cafile=str(certificates.ca),
        kafka_ssl_certfile=str(certificates.client_cert),
        kafka_ssl_keyfile=str(certificates.client_key),
        kafka_ssl_key_password=KEY_PASSWORD,
    )
    peer = await _peer_of_handshake(certificates, security_options(config)["ssl_context"])
    assert dict(pair[0] for pair in peer["subject"]) == {"commonName": "shop-client"}


def test_a_wrong_key_password_stops_naming_it(certificates: Certificates) -> None:
    config = Settings(
        kafka_security_protocol="SSL",
        kafka_ssl_certfile=str(certificates.client_cert),
        kafka_ssl_keyfile=str(certificates.client_key),
        kafka_ssl_key_password="not-it",
    )
    with pytest.raises(SystemExit, match="wrong KAFKA_SSL_KEY_PASSWORD"):
        security_options(config)


def test_a_ca_file_that_is_no_certificate_stops_naming_it(tmp_path: Path) -> None:
    junk = tmp_path / "ca.pem"
    junk.write_text("-----BEGIN CERTIFICATE-----\nbm90IGEgY2VydA==\n-----END CERTIFICATE-----\n")
    config = Settings(kafka_security_protocol="SSL", kafka_ssl_cafile=str(junk))
    with pytest.raises(SystemExit, match="KAFKA_SSL_CAFILE: no PEM CA certificate"):
        security_options(config)


@pytest.mark.parametrize(
    "fields",
    [
        {"kafka_security_protocol": "PLAINTEXT"},
        {"kafka_security_protocol": "SSL"},
        {"kafka_security_protocol": "SASL_PLAINTEXT", **LOGIN},
        {"kafka_security_protocol": "SASL_SSL", "kafka_sasl_mechanism": "SCRAM-SHA-256", **LOGIN},
    ],
    ids=lambda fields: fields["kafka_security_protocol"],
)
def test_faust_gets_the_same_options_as_every_other_client(fields: dict[str, Any]) -> None:
    options = security_options(Settings(**fields))
    faust_options = credentials_to_aiokafka_auth(faust_credentials(options))
    # faust also passes ssl_context=None without TLS: aiokafka's default
    assert {name: value for name, value in faust_options.items() if value is not None} == options


@pytest.mark.parametrize(
    ("env", "refusal"),
    [
        (
            {"KAFKA_SECURITY_PROTOCOL": "TLS"},
            "KAFKA_SECURITY_PROTOCOL must be one of PLAINTEXT, SSL",
        ),
        ({"KAFKA_SASL_MECHANISM": "GSSAPI"}, "KAFKA_SASL_MECHANISM must be one of PLAIN, SCRAM"),
        ({"KAFKA_SECURITY_PROTOCOL": "SASL_SSL"}, "SASL_SSL needs KAFKA_SASL_USERNAME"),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SASL_PLAINTEXT", "KAFKA_SASL_USERNAME": "shop"},
            "SASL_PLAINTEXT needs KAFKA_SASL_PASSWORD",
        ),
        (
            {"KAFKA_SASL_USERNAME": "shop", "KAFKA_SASL_PASSWORD": "pw"},
            "KAFKA_SASL_USERNAME is set but KAFKA_SECURITY_PROTOCOL=PLAINTEXT",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CAFILE": "/nowhere/ca.pem"},
            "KAFKA_SSL_CAFILE: no such file '/nowhere/ca.pem'",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_CERTFILE": "/nowhere/c.pem"},
            "KAFKA_SSL_CERTFILE: no such file",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEYFILE": "/nowhere/k.pem"},
            "KAFKA_SSL_KEYFILE: no such file",
        ),
        (
            {"KAFKA_SECURITY_PROTOCOL": "SSL", "KAFKA_SSL_KEY_PASSWORD": "pw"},
            "KAFKA_SSL_KEY_PASSWORD is set without KAFKA_SSL_CERTFILE",
        ),
    ],
)
def test_a_setting_that_cannot_work_stops_naming_its_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], refusal: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=refusal):
        Settings()


def test_tls_files_with_a_protocol_without_tls_are_refused(
    monkeypatch: pytest.MonkeyPatch, certificates: Certificates
) -> None:
    monkeypatch.setenv("KAFKA_SSL_CAFILE", str(certificates.ca))
    with pytest.raises(SystemExit, match=r"KAFKA_SSL_CAFILE is set but .*PLAINTEXT uses no TLS"):
        Settings()


def test_a_key_file_needs_its_certificate(
    monkeypatch: pytest.MonkeyPatch, certificates: Certificates
) -> None:
    monkeypatch.setenv("KAFKA_SECURITY_PROTOCOL", "SSL")
    monkeypatch.setenv("KAFKA_SSL_KEYFILE", str(certificates.client_key))
    with pytest.raises(SystemExit, match="KAFKA_SSL_KEYFILE is set without KAFKA_SSL_CERTFILE"):
        Settings()


def test_the_passwords_are_not_in_the_settings_repr(certificates: Certificates) -> None:
    config = Settings(
        kafka_security_protocol="SASL_SSL",
        kafka_ssl_certfile=str(certificates.client_cert),
        kafka_ssl_keyfile=str(certificates.client_key),
        kafka_ssl_key_password="key-secret",
        **LOGIN,
    )
    assert "'pw'" not in repr(config) and "key-secret" not in repr(config)


def test_the_harness_connects_as_its_system_workers_do(tmp_path: Path) -> None:
    system = System(
        tmp_path,
        KAFKA_BOOTSTRAP_SERVERS="127.0.0.1:1",
        KAFKA_SECURITY_PROTOCOL="SASL_PLAINTEXT",
        KAFKA_SASL_MECHANISM="SCRAM-SHA-256",
        KAFKA_SASL_USERNAME="shop",
        KAFKA_SASL_PASSWORD="pw",
    )
    assert system.client_options() == {
        "bootstrap_servers": "127.0.0.1:1",
        "security_protocol": "SASL_PLAINTEXT",
        "sasl_mechanism": "SCRAM-SHA-256",
        "sasl_plain_username": "shop",
        "sasl_plain_password": "pw",
    }


@pytest.fixture
def no_connections(monkeypatch: pytest.MonkeyPatch) -> Iterator[list[str]]:
    tried: list[str] = []

    async def connect(host: str, port: int, **options: Any) -> None:
        tried.append(f"{host}:{port}")
        raise ConnectionRefusedError

    monkeypatch.setattr(kafka_clients, "create_conn", connect)
    yield tried


async def test_the_login_check_leaves_plaintext_alone(no_connections: list[str]) -> None:
    await check_login(Settings())
    assert no_connections == []


async def test_the_login_check_leaves_unreachable_brokers_to_the_clients(
    no_connections: list[str],
) -> None:
    config = Settings(
        bootstrap_servers="127.0.0.1:1, 127.0.0.1:2",
        kafka_security_protocol="SASL_PLAINTEXT",
        **LOGIN,
    )
    await check_login(config)  # no exit: the clients wait for the brokers as ever
    assert no_connections == ["127.0.0.1:1", "127.0.0.1:2"]
