"""Settings from the environment: every variable the worker and the `shop` CLI read,
declared once here with its type, default, bounds and one line of help.

The only module that reads the environment for them (how: app/env_settings.py). A bad
value stops the process with one line naming the variable and what it must be, never a
traceback. docs/configuration.md is generated from these declarations:
`python -m app.configuration_doc --write`.
"""

from __future__ import annotations

from collections.abc import Callable
from pathlib import Path
from typing import Any, Literal, TypeVar

from pydantic import Field, field_validator, model_validator

from app.env_settings import EnvSettings, declarer, variable

T = TypeVar("T")

GROUPS = (
    "Kafka",
    "Worker",
    "HTTP",
    "Commands",
    "Saga",
    "Folds",
    "RocksDB",
    "Analytics",
    "Logging",
    "Command line",
)
"""The sections of docs/configuration.md, in order; every setting is in one."""

MiB = 1024 * 1024


_kafka = declarer("Kafka")
_worker = declarer("Worker")
_http = declarer("HTTP")
_commands = declarer("Commands")
_saga = declarer("Saga")
_folds = declarer("Folds")
_rocksdb = declarer("RocksDB")
_analytics = declarer("Analytics")
_logging = declarer("Logging")
_command_line = declarer("Command line")


# --- the settings ---------------------------------------------------------------------


API_TOKEN = _http(
    "API_TOKEN",
    "",
    "when set, writes need `Authorization: Bearer <token>` (the `shop` CLI sends it)",
    secret=True,
)
"""Declared once for the two that read it: the worker checks it, the CLI sends it."""


class AnalyticsSettings(EnvSettings):
    """The analytics windows, in whole seconds (domain/analytics.py's Config)."""

    window: int = _analytics("ANALYTICS_WINDOW_SECONDS", 60, "the main tumbling window", ge=1)
    live_window: int = _analytics(
        "ANALYTICS_LIVE_WINDOW_SECONDS", 10, "the live view's tumbling window", ge=1
    )
    hop_size: int = _analytics("ANALYTICS_HOP_SIZE_SECONDS", 300, "the hopping window", ge=1)
    hop_step: int = _analytics(
        "ANALYTICS_HOP_STEP_SECONDS",
        60,
        "how far the hopping window moves each step (the hop size is a multiple of it)",
        ge=1,
    )
    grace: int = _analytics(
        "ANALYTICS_GRACE_SECONDS",
        30,
        "a window still takes events this long after it ended (event time)",
        ge=1,
    )
    retention: int = _analytics(
        "ANALYTICS_RETENTION_SECONDS",
        3600,
        "windows are deleted this long after they ended (at least the grace)",
        ge=1,
    )

    def checked(self, build: Callable[..., T]) -> T:
        """`build(window=..., ...)` (domain/analytics.py's Config, whose pure check raises
        ValueError on sizes that cannot work together), or the worker stops with the reason,
        the faulty size named by its variable."""
        try:
            return build(**self.model_dump())
        except ValueError as error:
            field = type(self).model_fields.get(getattr(error, "field", None) or "")
            reason = getattr(error, "reason", None)
            raise SystemExit(
                f"{variable(field)} {reason}" if field and reason else str(error)
            ) from None


EXACTLY_ONCE_REMOVED = (
    "PROCESSING_GUARANTEE=exactly_once was removed: every effect already happens "
    "once (idempotent appends, folds that store their offsets with their rows); "
    "see docs/design.md, 'Exactly once, without transactions'"
)


class Settings(EnvSettings):
    """The worker's settings, read once at import (`settings` below)."""

    # Kafka
    bootstrap_servers: str = _kafka(
        "KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092", "the broker(s), host:port,..."
    )
    kafka_security_protocol: Literal["PLAINTEXT", "SSL", "SASL_PLAINTEXT", "SASL_SSL"] = _kafka(
        "KAFKA_SECURITY_PROTOCOL",
        "PLAINTEXT",
        "SSL for TLS only, SASL_SSL for TLS and a login, SASL_PLAINTEXT for a login only",
    )
    kafka_sasl_mechanism: Literal["PLAIN", "SCRAM-SHA-256", "SCRAM-SHA-512"] = _kafka(
        "KAFKA_SASL_MECHANISM", "PLAIN", "how a SASL login is checked"
    )
    kafka_sasl_username: str = _kafka(
        "KAFKA_SASL_USERNAME", "", "the SASL login (none: no SASL, whatever the protocol)"
    )
    kafka_sasl_password: str = _kafka(
        "KAFKA_SASL_PASSWORD", "", "the SASL login's password (never logged)", secret=True
    )
    kafka_ssl_cafile: str = _kafka(
        "KAFKA_SSL_CAFILE", "", "PEM file of the CA certificates TLS trusts (none: the system's)"
    )
    kafka_ssl_certfile: str = _kafka(
        "KAFKA_SSL_CERTFILE", "", "PEM file of this client's certificate, for mutual TLS"
    )
    kafka_ssl_keyfile: str = _kafka(
        "KAFKA_SSL_KEYFILE", "", "PEM file of the private key of KAFKA_SSL_CERTFILE"
    )
    kafka_ssl_key_password: str = _kafka(
        "KAFKA_SSL_KEY_PASSWORD",
        "",
        "the password of KAFKA_SSL_KEYFILE, if it has one (never logged)",
        secret=True,
    )
    topic_prefix: str = _kafka(
        "SHOP_TOPIC_PREFIX",
        "",
        "prepended to every topic name, so isolated copies (tests, benches) share a broker",
    )
    partitions: int = _kafka("SHOP_PARTITIONS", 8, "partitions of every topic and table", ge=1)
    replication_factor: int = _kafka(
        "SHOP_REPLICATION_FACTOR",
        1,
        "replicas of every topic the app creates (3 on a cluster)",
        ge=1,
    )
    min_insync_replicas: int = _kafka(
        "SHOP_MIN_INSYNC_REPLICAS",
        lambda declared: max(1, declared.get("replication_factor", 1) - 1),
        "min.insync.replicas of every topic the app creates: with acks=all, the copies a "
        "write needs (three brokers: 2, so a write survives one broker down and is refused "
        "rather than kept on one copy alone); at most SHOP_REPLICATION_FACTOR",
        shown="SHOP_REPLICATION_FACTOR - 1, at least 1",
        ge=1,
    )
    # A loop held longer than this is taken for a dead worker; nothing here holds it for
    # more than about a second (bench.failover, the soak).
    session_timeout: float = _kafka(
        "KAFKA_SESSION_TIMEOUT",
        10.0,
        "seconds before the group gives a dead worker's partitions to the others (one "
        "restarted within it gets its own back: SHOP_INSTANCE_ID); heartbeats every third of it",
        ge=1,
        le=1800,
    )
    linger_ms: int = _kafka(
        "KAFKA_LINGER_MS",
        0,
        "how long the producer holds a record to send it with others: 0 sends at once, "
        "and group commit (COMMAND_MAX_BATCH) makes the batches",
        ge=0,
        le=1000,
    )

    # Worker
    app_id: str = _worker("SHOP_APP_ID", "shop", "faust app id: the consumer groups' names")
    instance_id: str = _worker(
        "SHOP_INSTANCE_ID",
        "",
        "the worker's name, the same across its restarts: its reply topic and its static "
        "group membership (empty: host-port, no static membership, a restart moves every "
        "partition)",
    )
    standby_replicas: int = _worker(
        "SHOP_STANDBY_REPLICAS",
        0,
        "workers besides its owner that keep a partition's read models and command-side "
        "state folded (warm standbys: a takeover folds only the log's tail, reads may be "
        "answered from them); each folds every event once more",
        ge=0,
    )
    processing_guarantee: Literal["at_least_once"] = _worker(
        "PROCESSING_GUARANTEE",
        "at_least_once",
        "the only one left (exactly_once was removed: every effect already happens once)",
    )
    lag_degraded_threshold: int = _worker(
        "LAG_DEGRADED_THRESHOLD",
        1000,
        "total consumer lag (messages) above which health says degraded and readiness fails",
        ge=0,
    )
    handler_max_attempts: int = _worker(
        "HANDLER_MAX_ATTEMPTS",
        4,
        "tries of an agent's handler failing on its message before it is dead-lettered",
        ge=1,
    )
    handler_backoff_seconds: float = _worker(
        "HANDLER_BACKOFF_SECONDS",
        0.2,
        "the first pause between those tries, in seconds (doubled each time)",
        ge=0,
    )

    # HTTP
    web_bind: str = _http("WEB_BIND", "127.0.0.1", "the address the HTTP API listens on")
    web_port: int = _http(
        "WEB_PORT", 6066, "the HTTP API's port (faust's -p overrides it)", ge=1, le=65535
    )
    api_token: str = API_TOKEN
    min_version_wait: float = _http(
        "MIN_VERSION_WAIT", 5.0, "seconds a `?min_version=` read waits (then 503)", ge=0
    )
    max_body_bytes: int = _http(
        "MAX_BODY_BYTES", 64 * 1024, "request body limit in bytes (beyond: 413)", ge=1
    )

    # Commands
    command_timeout: float = _commands(
        "COMMAND_TIMEOUT", 10.0, "seconds a POST waits for its command's answer (then 504)", gt=0
    )
    command_max_in_flight: int = _commands(
        "COMMAND_MAX_IN_FLIGHT",
        64,
        "commands a worker waits on at once; beyond, a POST gets 503 `overloaded` at once",
        ge=1,
    )
    command_max_batch: int = _commands(
        "COMMAND_MAX_BATCH",
        500,
        "most commands one partition's writer decides and appends together",
        ge=1,
    )
    command_append_max_bytes: int = _commands(
        "COMMAND_APPEND_MAX_BYTES",
        1_000_000,
        "most bytes of one record batch a writer appends (a command's events are never "
        "split: a larger command goes alone); at most the brokers' message.max.bytes",
        ge=1,
    )

    # Saga
    saga_max_open_orders: int = _saga(
        "SAGA_MAX_OPEN_ORDERS",
        # an order's latency stays near this over the saga's throughput: 48 at a
        # worker's ~50 orders/s here is about a second, room enough for the jitter of
        # a saturated machine (24 refused 2-3 % of orders at 100/s, docs/benchmarks.md)
        48,
        "orders under way in the saga on a worker's partitions; beyond, POST /orders gets "
        "503 `saga_busy`",
        ge=1,
    )
    saga_local_dispatch: bool = _saga(
        "SAGA_LOCAL_DISPATCH",
        True,
        "a saga command for a partition this worker decides is decided here and its answer "
        "taken here (no command or answer record); off: every one goes through Kafka",
    )
    service_fetch_wait_ms: int = _saga(
        "SERVICE_FETCH_WAIT_MS",
        10,
        "longest the broker holds a fetch of a saga service's inputs to fill it (0: answered "
        "at the first record); each saga step may wait up to this",
        ge=0,
        le=1000,
    )

    # Folds
    fold_max_batch: int = _folds(
        "FOLD_MAX_BATCH",
        5000,
        "most records a batched fold takes in one fetch (one write per partition)",
        ge=1,
    )
    # None of the folds is on a command's or a saga step's path: a read that must see a
    # write asks with min_version instead.
    fold_follow_wait_ms: int = _folds(
        "FOLD_FOLLOW_WAIT_MS",
        100,
        "longest the broker holds a read model's fetch to fill it: each fold fetches at most "
        "1000/this times a second and trails the log by up to this",
        ge=0,
        le=10_000,
    )

    # RocksDB
    rocksdb_block_cache_bytes: int = _rocksdb(
        "ROCKSDB_BLOCK_CACHE_BYTES",
        16 * MiB,
        "one block cache shared by every store of the worker (index and filter blocks too)",
        ge=1,
    )
    rocksdb_write_buffer_bytes: int = _rocksdb(
        "ROCKSDB_WRITE_BUFFER_BYTES",
        4 * MiB,
        "one store's memtable, flushed to a file when full",
        ge=1,
    )
    rocksdb_memtables_bytes: int = _rocksdb(
        "ROCKSDB_MEMTABLES_BYTES",
        64 * MiB,
        "every memtable of the worker's stores together: past it, the store written flushes",
        ge=1,
    )

    # Analytics: their own class, checked together (AnalyticsSettings.checked)
    analytics: AnalyticsSettings = Field(default_factory=AnalyticsSettings)

    # Logging
    log_format: Literal["text", "json"] = _logging(
        "LOG_FORMAT", "text", "the worker's log lines: text for people, json for a collector"
    )
    log_level: Literal["debug", "info", "warning", "error", "critical"] = _logging(
        "LOG_LEVEL",
        "info",
        "the least severe log lines written; it overrides faust's `-l` (the launchers pass "
        "`-l info`)",
    )

    # Traces (app/tracing.py): OpenTelemetry's own variables, read here so a bad one stops
    # the worker by name; the exporter reads the rest of its OTEL_EXPORTER_OTLP_* itself
    otlp_endpoint: str = _logging(
        "OTEL_EXPORTER_OTLP_ENDPOINT", "", "the OTLP collector of every signal (spans: otlp)"
    )
    otlp_traces_endpoint: str = _logging(
        "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "", "the OTLP collector of the spans alone"
    )
    traces_exporter: Literal["none", "otlp", "console"] = _logging(
        "OTEL_TRACES_EXPORTER",
        lambda declared: (
            "otlp"
            if declared.get("otlp_endpoint") or declared.get("otlp_traces_endpoint")
            else "none"
        ),
        "where spans go: none (nothing of OpenTelemetry is imported), otlp or console; "
        "needs `pip install -e '.[otel]'`",
        shown="otlp when an OTLP endpoint is set, else none",
    )
    otlp_any_protocol: Literal["http/protobuf", "grpc"] = _logging(
        "OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", "how every signal is sent to OTLP"
    )
    otlp_protocol: Literal["http/protobuf", "grpc"] = _logging(
        "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
        lambda declared: declared.get("otlp_any_protocol", "http/protobuf"),
        "how the spans are sent to OTLP",
        shown="OTEL_EXPORTER_OTLP_PROTOCOL",
    )

    @field_validator("processing_guarantee", mode="before")
    @classmethod
    def _exactly_once_was_removed(cls, value: Any) -> Any:
        if isinstance(value, str) and value.strip().casefold() == "exactly_once":
            raise ValueError(EXACTLY_ONCE_REMOVED)
        return value

    @model_validator(mode="after")
    def _min_insync_within_the_replicas(self) -> Settings:
        if self.min_insync_replicas > self.replication_factor:
            raise ValueError(
                f"SHOP_MIN_INSYNC_REPLICAS must be between 1 and SHOP_REPLICATION_FACTOR "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )
        return self

    @model_validator(mode="after")
    def _kafka_security_that_can_work(self) -> Settings:
        """Refuse, by variable, a Kafka security setting that cannot work: each would
        otherwise surface later as a connection failing for no stated reason."""
        protocol = self.kafka_security_protocol
        sasl = protocol.startswith("SASL_")
        for name, value in (
            ("KAFKA_SASL_USERNAME", self.kafka_sasl_username),
            ("KAFKA_SASL_PASSWORD", self.kafka_sasl_password),
        ):
            if sasl and not value:
                raise ValueError(f"KAFKA_SECURITY_PROTOCOL={protocol} needs {name}")
            if value and not sasl:
                raise ValueError(
                    f"{name} is set but KAFKA_SECURITY_PROTOCOL={protocol} logs in with no "
                    "SASL: use SASL_SSL (or SASL_PLAINTEXT)"
                )
        tls = protocol in ("SSL", "SASL_SSL")
        for name, path in (
            ("KAFKA_SSL_CAFILE", self.kafka_ssl_cafile),
            ("KAFKA_SSL_CERTFILE", self.kafka_ssl_certfile),
            ("KAFKA_SSL_KEYFILE", self.kafka_ssl_keyfile),
        ):
            if not path:
                continue
            if not tls:
                raise ValueError(
                    f"{name} is set but KAFKA_SECURITY_PROTOCOL={protocol} uses no TLS: "
                    "use SSL or SASL_SSL"
                )
            if not Path(path).is_file():
                raise ValueError(f"{name}: no such file {path!r}")
        for name, value in (
            ("KAFKA_SSL_KEYFILE", self.kafka_ssl_keyfile),
            ("KAFKA_SSL_KEY_PASSWORD", self.kafka_ssl_key_password),
        ):
            if value and not self.kafka_ssl_certfile:
                raise ValueError(f"{name} is set without KAFKA_SSL_CERTFILE")
        return self

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


class CommandLineSettings(EnvSettings):
    """What the `shop` CLI reads, when a command runs (so --help never shows the token)."""

    shop_url: str = _command_line(
        "SHOP_URL",
        "http://127.0.0.1:6066",
        "the worker `shop dead-letters` talks to, when --url is not given",
    )
    api_token: str = API_TOKEN


class FaustSettings(EnvSettings):
    """What faust's command line sets after the App is built: read when the worker starts."""

    datadir: str = _worker(
        "F_DATADIR",
        "",
        "where the worker keeps its tables; faust's `-D DIR` sets it (empty: faust's default)",
    )


DECLARED: tuple[type[EnvSettings], ...] = (
    Settings,
    AnalyticsSettings,
    FaustSettings,
    CommandLineSettings,
)
"""Every class of settings: docs/configuration.md lists their variables."""

settings = Settings()
