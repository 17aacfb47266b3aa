"""Settings from the environment, read once; every knob has a safe default."""

from __future__ import annotations

import os
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import TypeVar

T = TypeVar("T")


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return int(raw)
    except ValueError:
        raise SystemExit(f"setting {name} must be an integer, got {raw!r}") from None


def _bounded(name: str, value: int, most: int) -> None:
    """Refuse, at start and by name, a setting outside 0..most."""
    if not 0 <= value <= most:
        raise SystemExit(f"{name} must be between 0 and {most}, got {value}")


def _flag(name: str, default: bool) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    if raw.lower() not in ("1", "0", "true", "false", "yes", "no", "on", "off"):
        raise SystemExit(f"setting {name} must be on or off (1/0, true/false), got {raw!r}")
    return raw.lower() in ("1", "true", "yes", "on")


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    try:
        return float(raw)
    except ValueError:
        raise SystemExit(f"setting {name} must be a number, got {raw!r}") from None


def _choice(name: str, default: str, choices: tuple[str, ...]) -> str:
    """One of `choices` (case-insensitive); empty or unset is `default`."""
    raw = os.environ.get(name, "").strip().lower()
    if raw == "":
        return default
    if raw not in choices:
        raise SystemExit(f"setting {name} must be one of {', '.join(choices)}, got {raw!r}")
    return raw


def _traces_exporter() -> str:
    """OTEL_TRACES_EXPORTER as OpenTelemetry names it, but off unless asked for: an OTLP
    endpoint alone (OTEL_EXPORTER_OTLP_[TRACES_]ENDPOINT) means otlp."""
    endpoint = _env("OTEL_EXPORTER_OTLP_TRACES_ENDPOINT", "") or _env(
        "OTEL_EXPORTER_OTLP_ENDPOINT", ""
    )
    return _choice("OTEL_TRACES_EXPORTER", "otlp" if endpoint else "none", TRACES_EXPORTERS)


def _seconds(name: str, default: int) -> int:
    raw = os.environ.get(name, "")
    if raw == "":
        return default
    if not raw.isdigit() or int(raw) <= 0:
        raise SystemExit(f"setting {name} must be a positive whole number of seconds, got {raw!r}")
    return int(raw)


LOG_FORMATS = ("text", "json")
LOG_LEVELS = ("debug", "info", "warning", "error", "critical")
TRACES_EXPORTERS = ("none", "otlp", "console")
OTLP_PROTOCOLS = ("http/protobuf", "grpc")

ANALYTICS_SETTINGS = {
    "window": "ANALYTICS_WINDOW_SECONDS",
    "live_window": "ANALYTICS_LIVE_WINDOW_SECONDS",
    "hop_size": "ANALYTICS_HOP_SIZE_SECONDS",
    "hop_step": "ANALYTICS_HOP_STEP_SECONDS",
    "grace": "ANALYTICS_GRACE_SECONDS",
    "retention": "ANALYTICS_RETENTION_SECONDS",
}
"""The analytics window sizes (fields of domain/analytics.py's Config) -> their variables."""


@dataclass(frozen=True)
class AnalyticsSettings:
    """The analytics windows, in whole seconds (each positive)."""

    window: int = field(default_factory=lambda: _seconds(ANALYTICS_SETTINGS["window"], 60))
    """The main tumbling window."""
    live_window: int = field(
        default_factory=lambda: _seconds(ANALYTICS_SETTINGS["live_window"], 10)
    )
    """The live view's tumbling window."""
    hop_size: int = field(default_factory=lambda: _seconds(ANALYTICS_SETTINGS["hop_size"], 300))
    hop_step: int = field(default_factory=lambda: _seconds(ANALYTICS_SETTINGS["hop_step"], 60))
    grace: int = field(default_factory=lambda: _seconds(ANALYTICS_SETTINGS["grace"], 30))
    """A window still takes events this long after it ended (event time)."""
    retention: int = field(default_factory=lambda: _seconds(ANALYTICS_SETTINGS["retention"], 3600))
    """Windows are deleted this long after they ended."""

    def checked(self, build: Callable[..., T]) -> T:
        """`build(window=..., ...)` (domain/analytics.py's Config, whose pure check raises
        ValueError on sizes that cannot work together), or the worker stops with the reason,
        the faulty size named by its variable."""
        try:
            return build(**asdict(self))
        except ValueError as error:
            name = ANALYTICS_SETTINGS.get(getattr(error, "field", None) or "")
            reason = getattr(error, "reason", None)
            raise SystemExit(f"{name} {reason}" if name and reason else str(error)) from None


@dataclass(frozen=True)
class Settings:
    bootstrap_servers: str = field(
        default_factory=lambda: _env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:9092")
    )
    app_id: str = field(default_factory=lambda: _env("SHOP_APP_ID", "shop"))
    topic_prefix: str = field(default_factory=lambda: _env("SHOP_TOPIC_PREFIX", ""))
    """Prepended to every topic name, so isolated copies (tests, benches) share a broker."""
    partitions: int = field(default_factory=lambda: _int("SHOP_PARTITIONS", 8))
    replication_factor: int = field(default_factory=lambda: _int("SHOP_REPLICATION_FACTOR", 1))
    min_insync_replicas: int = field(
        default_factory=lambda: _int(
            "SHOP_MIN_INSYNC_REPLICAS", max(1, _int("SHOP_REPLICATION_FACTOR", 1) - 1)
        )
    )
    """min.insync.replicas of every topic the app creates; default one less than the
    replication factor, at least 1: one broker 1, three brokers 2 (a write with acks=all
    then survives one broker down, and is refused rather than kept on one copy alone)."""
    store: str = field(default_factory=lambda: _env("SHOP_STORE", "rocksdb://"))
    standby_replicas: int = field(default_factory=lambda: _int("SHOP_STANDBY_REPLICAS", 1))
    session_timeout: float = field(default_factory=lambda: _float("KAFKA_SESSION_TIMEOUT", 10.0))
    """Seconds before the group gives a dead worker's partitions to the others (a worker
    restarted within it gets its own back: static membership). Heartbeats go every third
    of it from the worker's loop, so a loop held longer than this would be taken for
    dead; nothing here holds it for more than about a second (bench.failover, the soak)."""
    linger_ms: int = field(default_factory=lambda: _int("KAFKA_LINGER_MS", 0))
    """How long the producer holds a record to send it with others (aiokafka's linger_ms):
    0 sends at once, and group commit (COMMAND_MAX_BATCH) makes the batches."""
    web_bind: str = field(default_factory=lambda: _env("WEB_BIND", "127.0.0.1"))
    web_port: int = field(default_factory=lambda: _int("WEB_PORT", 6066))
    api_token: str = field(default_factory=lambda: _env("API_TOKEN", ""))
    """When set, write endpoints need `Authorization: Bearer <token>`."""
    command_timeout: float = field(default_factory=lambda: _float("COMMAND_TIMEOUT", 10.0))
    command_max_in_flight: int = field(default_factory=lambda: _int("COMMAND_MAX_IN_FLIGHT", 64))
    """Commands a worker waits on at once; past it a POST is refused at once (503)."""
    command_max_batch: int = field(default_factory=lambda: _int("COMMAND_MAX_BATCH", 500))
    """Most commands a partition's writer decides and appends together."""
    saga_max_open_orders: int = field(default_factory=lambda: _int("SAGA_MAX_OPEN_ORDERS", 24))
    """Orders under way in the saga on a worker's partitions; past it POST /orders is 503."""
    saga_local_dispatch: bool = field(default_factory=lambda: _flag("SAGA_LOCAL_DISPATCH", True))
    """A saga command whose target partition this worker decides is decided here, and its
    answer taken here (no command or answer record); off: every one goes through Kafka."""
    fold_max_batch: int = field(default_factory=lambda: _int("FOLD_MAX_BATCH", 5000))
    """Most records a batched fold takes in one getmany (one write per partition)."""
    service_fetch_wait_ms: int = field(default_factory=lambda: _int("SERVICE_FETCH_WAIT_MS", 10))
    """Longest the broker holds a fetch of a saga service's inputs to fill it
    (agents/engine.py): 0 answers at the first record, and under load sends a fetch
    request per record or two; each saga step may wait up to this."""
    fold_follow_wait_ms: int = field(default_factory=lambda: _int("FOLD_FOLLOW_WAIT_MS", 100))
    """Longest the broker holds a read model's fetch to fill it: each fold fetches at most
    1000/this times a second, and trails the log by up to this much (none of them is on
    a command's or a saga step's path)."""
    lag_degraded_threshold: int = field(
        default_factory=lambda: _int("LAG_DEGRADED_THRESHOLD", 1000)
    )
    """Total consumer lag (messages) above which health says degraded and readiness fails."""
    min_version_wait: float = field(default_factory=lambda: _float("MIN_VERSION_WAIT", 5.0))
    max_body_bytes: int = field(default_factory=lambda: _int("MAX_BODY_BYTES", 64 * 1024))
    rocksdb_block_cache_bytes: int = field(
        default_factory=lambda: _int("ROCKSDB_BLOCK_CACHE_BYTES", 16 * 1024 * 1024)
    )
    """One block cache shared by every store of the worker (tables/partition_store.py)."""
    rocksdb_write_buffer_bytes: int = field(
        default_factory=lambda: _int("ROCKSDB_WRITE_BUFFER_BYTES", 4 * 1024 * 1024)
    )
    """A store's memtable: flushed to a file when full."""
    rocksdb_memtables_bytes: int = field(
        default_factory=lambda: _int("ROCKSDB_MEMTABLES_BYTES", 64 * 1024 * 1024)
    )
    """Every memtable of the worker's stores together: past it, the store written flushes."""
    instance_id: str = field(default_factory=lambda: _env("SHOP_INSTANCE_ID", ""))
    """Names this worker's reply topic; default: host name and web port."""
    kafka_security_protocol: str = field(
        default_factory=lambda: _env("KAFKA_SECURITY_PROTOCOL", "PLAINTEXT")
    )
    kafka_sasl_mechanism: str = field(default_factory=lambda: _env("KAFKA_SASL_MECHANISM", "PLAIN"))
    kafka_sasl_username: str = field(default_factory=lambda: _env("KAFKA_SASL_USERNAME", ""))
    kafka_sasl_password: str = field(
        default_factory=lambda: _env("KAFKA_SASL_PASSWORD", ""), repr=False
    )
    handler_max_attempts: int = field(default_factory=lambda: _int("HANDLER_MAX_ATTEMPTS", 4))
    """Tries of an agent's handler failing on its message before it is dead-lettered."""
    handler_backoff_seconds: float = field(
        default_factory=lambda: _float("HANDLER_BACKOFF_SECONDS", 0.2)
    )
    """The first pause between those tries (doubled each time)."""
    log_format: str = field(default_factory=lambda: _choice("LOG_FORMAT", "text", LOG_FORMATS))
    """text: faust's lines; json: every line the worker writes is one JSON object (app/logs.py)."""
    log_level: str = field(default_factory=lambda: _choice("LOG_LEVEL", "info", LOG_LEVELS))
    """The worker's log level; it overrides faust's `-l` (the launchers pass `-l info`)."""
    traces_exporter: str = field(default_factory=_traces_exporter)
    """Where OpenTelemetry spans go (app/tracing.py): none (default: nothing is imported),
    otlp or console. The exporter reads its own OTEL_EXPORTER_OTLP_* variables."""
    otlp_protocol: str = field(
        default_factory=lambda: _choice(
            "OTEL_EXPORTER_OTLP_TRACES_PROTOCOL",
            _choice("OTEL_EXPORTER_OTLP_PROTOCOL", "http/protobuf", OTLP_PROTOCOLS),
            OTLP_PROTOCOLS,
        )
    )
    analytics: AnalyticsSettings = field(default_factory=AnalyticsSettings)

    def __post_init__(self) -> None:
        if _env("PROCESSING_GUARANTEE", "at_least_once") != "at_least_once":
            raise SystemExit(
                "PROCESSING_GUARANTEE=exactly_once was removed: every effect already happens "
                "once (idempotent appends, folds that store their offsets with their rows); "
                "see the README's 'Exactly once' paragraph"
            )
        if self.partitions < 1:
            raise SystemExit("SHOP_PARTITIONS must be at least 1")
        if self.replication_factor < 1:
            raise SystemExit("SHOP_REPLICATION_FACTOR must be at least 1")
        _bounded("KAFKA_LINGER_MS", self.linger_ms, 1_000)
        _bounded("SERVICE_FETCH_WAIT_MS", self.service_fetch_wait_ms, 1_000)
        _bounded("FOLD_FOLLOW_WAIT_MS", self.fold_follow_wait_ms, 10_000)
        if not 1 <= self.min_insync_replicas <= self.replication_factor:
            raise SystemExit(
                f"SHOP_MIN_INSYNC_REPLICAS must be between 1 and SHOP_REPLICATION_FACTOR "
                f"({self.replication_factor}), got {self.min_insync_replicas}"
            )

    def topic(self, name: str) -> str:
        return f"{self.topic_prefix}{name}"


settings = Settings()
