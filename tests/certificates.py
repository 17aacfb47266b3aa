"""Certificates for TLS tests, made with openssl at test time: a CA, a broker
certificate for 127.0.0.1 (and localhost) signed by it, and a client certificate signed
by it whose key is encrypted. EC P-256 keys: made in milliseconds, where RSA takes a
second each on a busy machine."""

from __future__ import annotations

import subprocess
from dataclasses import dataclass
from pathlib import Path

KEY_PASSWORD = "client-key-pw"
"""What the client's private key is encrypted with."""

EC_KEY = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1"


@dataclass(frozen=True)
class Certificates:
    ca: Path
    """The CA certificate (PEM): what clients and the broker trust."""
    broker: Path
    """The broker's unencrypted PKCS#8 key, then its certificate (scripts/kafka.sh's
    KAFKA_BROKER_KEYSTORE)."""
    broker_key: Path
    broker_cert: Path
    client_cert: Path
    client_key: Path
    """Encrypted with KEY_PASSWORD."""


def _openssl(command: str, *more: str, cwd: Path) -> None:
    """`openssl` with `command`'s words (no spaces within one) and then `more`."""
    subprocess.run(["openssl", *command.split(), *more], cwd=cwd, check=True, capture_output=True)


def make_certificates(directory: Path) -> Certificates:
    """Make the CA and its two certificates in `directory` (valid for two days)."""
    new_key = f"req {EC_KEY} -nodes"
    signed = "x509 -req -CA ca.pem -CAkey ca.key -CAcreateserial -days 2"
    _openssl(
        f"{new_key} -x509 -days 2 -keyout ca.key -out ca.pem",
        "-subj",
        "/CN=shop test CA",
        cwd=directory,
    )
    _openssl(f"{new_key} -keyout broker.key -out broker.csr -subj /CN=127.0.0.1", cwd=directory)
    (directory / "broker.ext").write_text("subjectAltName=IP:127.0.0.1,DNS:localhost\n")
    _openssl(f"{signed} -in broker.csr -extfile broker.ext -out broker.crt", cwd=directory)
    _openssl(
        f"req {EC_KEY} -passout pass:{KEY_PASSWORD} -keyout client.key -out client.csr"
        " -subj /CN=shop-client",
        cwd=directory,
    )
    _openssl(f"{signed} -in client.csr -out client.crt", cwd=directory)
    broker = directory / "broker.pem"
    broker.write_text(
        (directory / "broker.key").read_text() + (directory / "broker.crt").read_text()
    )
    return Certificates(
        ca=directory / "ca.pem",
        broker=broker,
        broker_key=directory / "broker.key",
        broker_cert=directory / "broker.crt",
        client_cert=directory / "client.crt",
        client_key=directory / "client.key",
    )
