"""How every Kafka client connects: `client_options` turns the settings into aiokafka's
connection options (bootstrap servers, TLS, SASL), for every client the project builds
(replies, admin, lag, tools, the test and bench harness; faust's own clients get the
same, app/main.py); `check_login` stops a worker whose credentials the brokers refuse.
And the consumer every reader of the log starts with (`started_consumer`). No faust
here: the refold processes start on this module alone."""

from __future__ import annotations

import asyncio
import logging
import ssl
from typing import Any

from aiokafka import AIOKafkaConsumer
from aiokafka.conn import create_conn
from aiokafka.errors import (
    IllegalSaslStateError,
    KafkaError,
    SaslAuthenticationFailed,
    UnsupportedSaslMechanismError,
)

from app.settings import Settings, settings

log = logging.getLogger(__name__)

PARTITION_FETCH_BYTES = 1024 * 1024
"""Most a fetch of the readers brings of one partition (about 3,000 events): a worker
catching up reads every partition of several topics at once, and what a fetch brings
waits in memory until it is folded. A worker folding a million accounts from an empty
disk peaked at 309 MB with 4 MiB and 277 MB with this, ready 72 s after its start
instead of 67 (bench.peers, the memory figures in docs/benchmarks.md)."""


SECURITY_VARIABLES = (
    "KAFKA_SECURITY_PROTOCOL",
    "KAFKA_SASL_MECHANISM",
    "KAFKA_SASL_USERNAME",
    "KAFKA_SASL_PASSWORD",
    "KAFKA_SSL_CAFILE",
    "KAFKA_SSL_CERTFILE",
    "KAFKA_SSL_KEYFILE",
    "KAFKA_SSL_KEY_PASSWORD",
)
"""The settings `security_options` reads, by variable (each is its setting's name in
capitals): what a launcher passes on for its clients to connect as its workers do."""


def client_options(config: Settings | None = None) -> dict[str, Any]:
    """Bootstrap servers and security, as every aiokafka client takes them (`config`:
    the settings to use; default the worker's)."""
    config = settings if config is None else config
    return {"bootstrap_servers": config.bootstrap_servers, **security_options(config)}


def security_options(config: Settings) -> dict[str, Any]:
    """The protocol, and TLS context and SASL login when it has them (aiokafka's names)."""
    protocol = config.kafka_security_protocol
    options: dict[str, Any] = {"security_protocol": protocol}
    if protocol in ("SSL", "SASL_SSL"):
        options["ssl_context"] = tls_context(config)
    if protocol in ("SASL_PLAINTEXT", "SASL_SSL"):
        options["sasl_mechanism"] = config.kafka_sasl_mechanism
        options["sasl_plain_username"] = config.kafka_sasl_username
        options["sasl_plain_password"] = config.kafka_sasl_password
    return options


def tls_context(config: Settings) -> ssl.SSLContext:
    """Checks the brokers' certificates and names against KAFKA_SSL_CAFILE (or the
    system's CAs), and shows the client certificate when one is set. A file that does
    not load stops the worker with its variable named."""
    try:
        context = ssl.create_default_context(cafile=config.kafka_ssl_cafile or None)
    except (ssl.SSLError, ValueError) as error:
        raise SystemExit(f"KAFKA_SSL_CAFILE: no PEM CA certificate in it: {error}") from None
    if config.kafka_ssl_certfile:
        try:
            context.load_cert_chain(
                config.kafka_ssl_certfile,
                config.kafka_ssl_keyfile or None,
                password=config.kafka_ssl_key_password or None,
            )
        except ssl.SSLError as error:
            raise SystemExit(
                "KAFKA_SSL_CERTFILE/KAFKA_SSL_KEYFILE: the client certificate and its key "
                f"do not load (not PEM, not a pair, or a wrong KAFKA_SSL_KEY_PASSWORD): {error}"
            ) from None
    return context


LOGIN_REFUSED = (SaslAuthenticationFailed, UnsupportedSaslMechanismError, IllegalSaslStateError)
"""The brokers' answers to a login they will never accept: retrying cannot help."""


async def check_login(config: Settings | None = None) -> None:
    """Connect to a bootstrap server as every client will (TLS handshake, SASL login),
    and stop the worker at once, with the reason in one line, when the brokers refuse
    the certificate or the login. Unreachable brokers are not this check's business:
    the clients wait for them as they always do."""
    config = settings if config is None else config
    options = security_options(config)
    if options["security_protocol"] == "PLAINTEXT":
        return
    for server in config.bootstrap_servers.split(","):
        host, _, port = server.strip().rpartition(":")
        try:
            connection = await create_conn(host, int(port), **options)
        except LOGIN_REFUSED as error:
            user = config.kafka_sasl_username
            raise SystemExit(
                f"Kafka authentication failed for user {user!r} ({config.kafka_sasl_mechanism} "
                f"at {server}): {error.args[0] if error.args else error}; check "
                "KAFKA_SASL_USERNAME, KAFKA_SASL_PASSWORD and KAFKA_SASL_MECHANISM"
            ) from None
        except ssl.SSLCertVerificationError as error:
            raise SystemExit(
                f"Kafka TLS failed at {server}: the broker's certificate does not verify "
                f"({error.verify_message}); check KAFKA_SSL_CAFILE"
            ) from None
        except (OSError, TimeoutError, KafkaError) as error:
            log.warning("could not check the Kafka login at %s: %r", server, error)
            continue
        connection.close()
        return


FILL_BYTES = 1024 * 1024
"""A following consumer's fetch waits for this much (never reached in practice: its wait
ends it), so each fetch brings what arrived during the wait."""


async def started_consumer(
    group_id: str | None, following: bool = False, wait_ms: int | None = None
) -> AIOKafkaConsumer:
    """A consumer for explicit assignment and seeks (no group membership; a group id
    only to commit progress to). `following`: it trails the log's end, so its fetches
    wait to fill (`wait_ms`, default FOLD_FOLLOW_WAIT_MS): a reader that trails the log by
    up to that fetches a few times a second per broker, not once for each record that
    arrives (writing fetch requests was a large share of a worker's CPU: bench.saga's
    profile, docs)."""
    wait = settings.fold_follow_wait_ms if wait_ms is None else wait_ms
    batching = {"fetch_min_bytes": FILL_BYTES, "fetch_max_wait_ms": wait}
    consumer = AIOKafkaConsumer(
        group_id=group_id,
        enable_auto_commit=False,
        auto_offset_reset="earliest",
        max_partition_fetch_bytes=PARTITION_FETCH_BYTES,
        **(batching if following else {}),
        **client_options(),
    )
    await consumer.start()
    # let its coordinator's reset task start: cancelled before its first step (a stop
    # right after the start), aiokafka's close() raises CancelledError into the caller
    await asyncio.sleep(0)
    return consumer


def coordination_died(consumer: AIOKafkaConsumer) -> bool:
    """Whether the consumer's group coordination ended for good. aiokafka 0.14 asserts in
    its coordination task when an assignment changes twice while the group's coordinator
    is being looked up (aio-libs/aiokafka#796, open): a worker's start, or a coordinator
    moving, then two rebalances close together. The task dies, and from then on every
    fetch, commit and committed() of that consumer fails; only a new consumer reads
    again. (Private attributes: the one place this project reads them.)"""
    coordinator = getattr(consumer, "_coordinator", None)
    task = getattr(coordinator, "_coordination_task", None)
    return task is not None and task.done()
