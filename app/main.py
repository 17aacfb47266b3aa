"""The faust application: one App per worker process, configured from the environment."""

from __future__ import annotations

import os
import warnings
from collections.abc import Awaitable, Callable
from pathlib import Path

import faust
from faust.streams import current_event
from faust.transport.consumer import TransactionManager
from faust.types import TransportT

from app.durable_table import DurableTable
from app.producer import ShopProducer
from app.settings import settings

EXACTLY_ONCE = settings.processing_guarantee == "exactly_once"


def _credentials() -> faust.SASLCredentials | None:
    if not settings.kafka_sasl_username:
        return None
    ssl_context = None
    if settings.kafka_security_protocol.startswith("SASL_SSL"):
        import ssl

        ssl_context = ssl.create_default_context()
    return faust.SASLCredentials(
        username=settings.kafka_sasl_username,
        password=settings.kafka_sasl_password,
        mechanism=settings.kafka_sasl_mechanism,
        ssl_context=ssl_context,
    )


class SourcePartitionTransactions(TransactionManager):
    """exactly_once: put each send in the transaction of the input being processed.

    faust 0.15.3 (transport/consumer.py TransactionManager.send) picks the
    transactional producer from the DESTINATION (topic group, partition), but a
    transaction is committed only with offsets of its own input partitions
    (TransactionManager.commit). So a send to another partition (a web view's
    command, a saga command keyed by another aggregate, a repartitioned feed,
    analytics facts) sits in a transaction that nothing commits: read_committed
    consumers never see it and the system hangs without an error; it is also
    not atomic with the input it came from. Kafka's rule is one transaction per
    input partition, so: in an agent, the current event's (group, partition);
    outside any event (web views, timers) there is no input to be atomic with,
    so the plain idempotent producer, visible at once.
    """

    async def send(  # type: ignore[no-untyped-def]
        self, topic, key, value, partition, timestamp, headers, *, transactional_id=None
    ):
        if topic in self.app.tables.changelog_topics:
            # table writes are buffered and published from another task (no current
            # event), but carry the source partition: faust's routing is right for them
            return await super().send(topic, key, value, partition, timestamp, headers)
        event = current_event()
        if event is None:
            return await self.producer.send(topic, key, value, partition, timestamp, headers)
        source = event.message.tp
        group = self.app.assignor.group_for_topic(source.topic)
        return await self.producer.send(
            topic,
            key,
            value,
            partition,
            timestamp,
            headers,
            transactional_id=f"{self.app.conf.id}-{group}-{source.partition}",
        )

    async def commit(self, offsets, start_new_transaction=True):  # type: ignore[no-untyped-def]
        # table writes wait in faust's send buffer: publish them into their
        # transactions first, or they would be committed with the NEXT offsets
        await self.producer.buffer.flush()
        return await super().commit(offsets, start_new_transaction=start_new_transaction)


class ShopApp(faust.App):
    """faust.App that runs its declarations (topic creation) before any consumer starts."""

    def _new_transport(self) -> TransportT:
        transport = super()._new_transport()
        transport.Producer = ShopProducer  # type: ignore[misc]
        if EXACTLY_ONCE:
            transport.TransactionManager = SourcePartitionTransactions  # type: ignore[misc]
        return transport

    declarations: list[Callable[[], Awaitable[None]]]

    async def on_first_start(self) -> None:
        # `faust -D DIR` exports F_DATADIR only after this module built the App
        # (faust expects the App to be imported later): apply it before any table opens.
        if os.environ.get("F_DATADIR"):
            with warnings.catch_warnings():
                warnings.simplefilter("ignore")  # only the banner has read it so far
                self.conf.datadir = Path(os.environ["F_DATADIR"])
        self.conf.datadir.mkdir(parents=True, exist_ok=True)
        await super().on_first_start()
        for declare in self.declarations:
            await declare()


app = ShopApp(
    settings.app_id,
    broker=[f"kafka://{server}" for server in settings.bootstrap_servers.split(",")],
    broker_credentials=_credentials(),
    store=settings.store,
    topic_partitions=settings.partitions,
    topic_replication_factor=settings.replication_factor,
    processing_guarantee=settings.processing_guarantee,
    table_standby_replicas=settings.standby_replicas,
    Table=DurableTable,
    # Keys are plain aggregate ids on every topic and table, so that Kafka tools
    # show them as they are and table_route hashes them like the producer does.
    key_serializer="raw",
    # Table values are JSON dicts; topics carry raw bytes that models/ decodes.
    value_serializer="json",
    web_bind=settings.web_bind,
    web_port=settings.web_port,
    web_tables_enabled=False,
    web_cors_options=None,
    rocksdb_options={
        "block_cache_size": settings.rocksdb_block_cache_bytes,
        "block_cache_compressed_size": 0,
        "write_buffer_size": settings.rocksdb_write_buffer_bytes,
        "max_write_buffer_number": 2,
    },
    broker_session_timeout=settings.session_timeout,
    broker_heartbeat_interval=max(1.0, settings.session_timeout / 3),
    producer_linger=0.002,
    # stop promptly: handlers are idempotent and offsets are committed only for
    # processed messages, so what is in flight is simply processed again
    stream_wait_empty=False,
    broker_commit_every=1000,
    # under exactly_once a commit ends the transactions: outputs (events, replies)
    # become visible to read_committed readers only then, so commit often (as
    # Kafka Streams does under EOS: 100 ms)
    broker_commit_interval=0.1 if EXACTLY_ONCE else 1.0,
)

app.declarations = []

__all__ = ["app"]
