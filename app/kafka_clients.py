"""Connection options for the plain aiokafka clients (replies, admin, lag, tools)."""

from __future__ import annotations

from typing import Any

from app.settings import settings

PARTITION_FETCH_BYTES = 1024 * 1024
"""Most a fetch of the readers brings of one partition (about 3,000 events): a worker
catching up reads every partition of several topics at once, and what a fetch brings
waits in memory until it is folded. A worker folding a million accounts from an empty
disk peaked at 309 MB with 4 MiB and 277 MB with this, ready 72 s after its start
instead of 67 (bench.peers, the memory figures in the README)."""


def client_options() -> dict[str, Any]:
    """bootstrap servers and, when configured, SASL/TLS, as aiokafka expects them."""
    options: dict[str, Any] = {"bootstrap_servers": settings.bootstrap_servers}
    protocol = settings.kafka_security_protocol
    if protocol != "PLAINTEXT":
        options["security_protocol"] = protocol
    if protocol.startswith("SASL"):
        options["sasl_mechanism"] = settings.kafka_sasl_mechanism
        options["sasl_plain_username"] = settings.kafka_sasl_username
        options["sasl_plain_password"] = settings.kafka_sasl_password
    if protocol.endswith("SSL"):
        import ssl

        options["ssl_context"] = ssl.create_default_context()
    return options
