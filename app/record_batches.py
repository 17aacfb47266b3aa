"""A command's events reach the log whole or not at all.

Kafka appends a record batch as one unit: one CRC, one range of offsets, replicated
and acknowledged together; a producer that dies mid-send leaves either the whole
batch in the log or none of it. Records sent one by one have no such unit: the
producer closes its batches by size (16 KB), so a command's last events can fall into
a batch of their own, and a SIGKILL between the two left a command half in the log
(seen in CI: an order's last LineReserved appended without the InventoryReserved of
the same decision, and the order stuck, since a retry is answered from the log).

So a writer hands its batch of decisions over as record batches it builds itself
(`pack`: every command's events in one record batch, as many commands in each as fit
`max_bytes`; a command larger than that alone in one) and sends each with
`send_record_batch`. The records of one partition's batches get consecutive offsets,
in order, as before.
"""

from __future__ import annotations

import asyncio
from collections.abc import Sequence
from dataclasses import dataclass
from functools import cached_property

from aiokafka import AIOKafkaProducer
from aiokafka.record.default_records import DefaultRecordBatchBuilder
from aiokafka.structs import RecordMetadata

from app.faust_clients import record_batch_builder

BATCH_HEADER_BYTES = 61
"""A v2 record batch's header (DefaultRecordBatch's HEADER_STRUCT)."""


@dataclass(frozen=True)
class Record:
    key: bytes
    value: bytes
    headers: list[tuple[str, bytes]]

    @cached_property
    def most_bytes(self) -> int:
        """An upper bound of its size in a record batch (aiokafka's estimate, less the
        batch header it counts once per record): computed once, for `pack` and the
        builder's size both."""
        estimate = DefaultRecordBatchBuilder.estimate_size_in_bytes(
            self.key, self.value, self.headers
        )
        return int(estimate) - BATCH_HEADER_BYTES


def pack(groups: Sequence[Sequence[Record]], max_bytes: int) -> list[list[Record]]:
    """The groups' records, in order, in record batches of at most `max_bytes` each,
    never splitting a group (one larger than `max_bytes` goes alone)."""
    batches: list[list[Record]] = []
    batch: list[Record] = []
    size = BATCH_HEADER_BYTES
    for group in groups:
        if not group:
            continue
        group_size = sum(record.most_bytes for record in group)
        if batch and size + group_size > max_bytes:
            batches.append(batch)
            batch, size = [], BATCH_HEADER_BYTES
        batch.extend(group)
        size += group_size
    if batch:
        batches.append(batch)
    return batches


async def send_record_batch(
    producer: AIOKafkaProducer,
    topic: str,
    partition: int,
    records: Sequence[Record],
    timestamp_ms: int,
) -> asyncio.Future[RecordMetadata]:
    """Hand `records` to the producer as one record batch for `topic`'s `partition`; the
    future is its first record's metadata once acknowledged (the others follow it, one
    offset each)."""
    size = BATCH_HEADER_BYTES + sum(record.most_bytes for record in records)
    builder = record_batch_builder(producer, size)
    for record in records:
        added = builder.append(
            timestamp=timestamp_ms, key=record.key, value=record.value, headers=record.headers
        )
        if added is None:  # the bound above is aiokafka's own: this is a defect
            raise RuntimeError(f"{topic}[{partition}]: a record batch of {size} bytes is full")
    builder.close()
    future: asyncio.Future[RecordMetadata] = await producer.send_batch(
        builder, topic, partition=partition
    )
    return future
