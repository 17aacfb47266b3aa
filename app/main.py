"""The faust application: one App per worker process, configured from the environment."""

from __future__ import annotations

import warnings
from collections.abc import Awaitable, Callable, Mapping
from pathlib import Path
from typing import Any

import faust
from faust.tables import TableManager
from faust.types import TransportT
from faust.types.auth import CredentialsT

from app import logs, tracing
from app.faust_clients import ShopConsumer, ShopProducer
from app.kafka_clients import check_login, security_options
from app.settings import FaustSettings, settings


def faust_credentials(options: Mapping[str, Any]) -> CredentialsT | None:
    """faust's credentials for the security in `options` (`security_options`): faust
    turns them back into these same aiokafka options for its producer and consumer."""
    protocol = options["security_protocol"]
    if protocol == "PLAINTEXT":
        return None
    if protocol == "SSL":
        return faust.SSLCredentials(options["ssl_context"])
    return faust.SASLCredentials(
        username=options["sasl_plain_username"],
        password=options["sasl_plain_password"],
        mechanism=options["sasl_mechanism"],
        ssl_context=options.get("ssl_context"),
    )


class ShopTableManager(TableManager):
    """faust's TableManager without its second of grace at start: faust waits a second
    in case a table is declared late, but every table here is declared at import (there
    is one, tables/owners.py), and that second was a second of every start."""

    async def on_start(self) -> None:
        await self._update_channels()
        await self.recovery.start()


class ShopApp(faust.App):
    """faust.App that runs its declarations (topic creation) before any consumer starts."""

    def _new_transport(self) -> TransportT:
        transport = super()._new_transport()
        transport.Producer = ShopProducer  # type: ignore[misc]
        transport.Consumer = ShopConsumer  # type: ignore[misc]
        return transport

    declarations: list[Callable[[], Awaitable[None]]]
    drains: list[Callable[[], Awaitable[None]]]
    """Run first when the worker stops, before any part of it stops (a graceful stop:
    take no new work, finish what is in flight; the command bus's `drain`)."""

    async def on_first_start(self) -> None:
        # `faust -D DIR` exports F_DATADIR only after this module built the App
        # (faust expects the App to be imported later): apply it before any table opens.
        datadir = FaustSettings().datadir
        if datadir:
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # only the banner has read it so far
                self.conf.datadir = Path(datadir)
        self.conf.datadir.mkdir(parents=True, exist_ok=True)
        # refused credentials stop the worker here, in one line, before any client
        # retries them in a loop
        await check_login()
        tracing.start(logs.WORKER)
        await super().on_first_start()
        for declare in self.declarations:
            await declare()

    async def on_stop(self) -> None:
        for drain in self.drains:
            await drain()
        await super().on_stop()


if settings.log_format == "json":
    logs.use_json_lines()

app = ShopApp(
    settings.app_id,
    TableManager=ShopTableManager,
    Worker=logs.ShopWorker,
    logging_config=logs.logging_config(),
    broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
    # faust's producer and consumer connect as every other client (app/kafka_clients.py)
    broker_credentials=faust_credentials(security_options(settings)),
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    table_standby_replicas=settings.standby_replicas,
    # Keys are plain aggregate ids on every topic and table, so that Kafka tools
    # show them as they are and table_route hashes them like the producer does.
    key_serializer="raw",
    # Table values are JSON dicts; topics carry raw bytes that models/ decodes.
    value_serializer="json",
    web_bind=settings.web_bind,
    web_port=settings.web_port,
    web_tables_enabled=False,
    # faust's /router/ page is no part of the API (requests are routed by table_route)
    web_router_enabled=False,
    web_cors_options=None,
    # static membership (KIP-345): a worker that comes back under the same name within
    # the session timeout gets its partitions back with no rebalance, and the others
    # never stop; without a name, every restart revokes and reassigns every partition
    consumer_group_instance_id=settings.instance_id or None,
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=max(1.0, settings.session_timeout / 3),
    # acks=all: an append is answered once every in-sync replica has it (at least
    # SHOP_MIN_INSYNC_REPLICAS of them), so losing a broker after that loses no event
    producer_acks=-1,
    # by default a batch's appends go out at once: group commit, not a timer, makes batches
    producer_linger=settings.linger_ms / 1000,
    # stop promptly: handlers are idempotent and offsets are committed only for
    # processed messages, so what is in flight is simply processed again
    stream_wait_empty=False,
    broker_commit_every=1000,
    broker_commit_interval=1.0,
)

app.declarations = []
app.drains = []

__all__ = ["app"]
