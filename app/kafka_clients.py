"""Connection options for the plain aiokafka clients (replies, admin, lag, tools)."""

from __future__ import annotations

from typing import Any

from app.settings import settings


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
