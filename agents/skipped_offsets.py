"""Messages faust skipped: read them back from the partition and handle them first.

faust 0.15.3 can lose a message at a rebalance: its drain loop hands a message
to the stream in `wait_first(callback(message), suspend_flow.wait())`, and when
the flow is suspended first the hand-over is cancelled, yet the message counts
as read; the next message then leaves a "gap" that faust commits past (it
takes gaps for compaction or transaction markers). The message is never
processed anywhere: a command never decided, a saga step never taken.

Our input topics have contiguous offsets (no compaction; under at_least_once no
transaction markers), so for each agent and partition `guarded` checks that a
message is the next one: after the group's committed offset for the first
message of an assignment, after the previous one since. What lies between is
read straight from Kafka and handled first (handlers are idempotent, so a
false alarm costs a repeat, never a wrong result).
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from faust.types import TP

from app.kafka_clients import client_options
from app.log_reader import LoggedMessage, read_range
from app.main import app
from app.metrics import SKIPPED_REPLAYED

log = logging.getLogger(__name__)

_next: dict[tuple[str, TP], int] = {}
"""(agent, partition) -> the offset its next message must have."""


@dataclass(frozen=True)
class SkippedEvent:
    """A skipped message as an event for `guarded` (it reads `.message` and `.value`)."""

    message: LoggedMessage

    @property
    def value(self) -> bytes:
        return self.message.value

    def ack(self) -> bool:
        """Nothing to mark: its offset is below the message it was found before, whose
        acknowledgement covers it."""
        return True


async def skipped_before(agent: str, tp: TP, offset: int) -> list[SkippedEvent]:
    """The messages of `tp` that `agent` should have seen before `offset` and did not."""
    key = (agent, tp)
    expected = _next.get(key)
    if expected is None:
        expected = await _committed(tp)
    _next[key] = max(offset + 1, expected or 0)  # a replayed message never moves it back
    if expected is None or offset <= expected:
        return []
    skipped = [
        SkippedEvent(message)
        for message in await read_range(tp.topic, tp.partition, expected, offset)
    ]
    log.warning(
        "%s: %s:%d jumped from offset %d to %d; handling the %d skipped message(s) first",
        agent,
        tp.topic,
        tp.partition,
        expected,
        offset,
        len(skipped),
    )
    SKIPPED_REPLAYED.labels(agent=agent).inc(len(skipped))
    return skipped


def forget(tps: set[TP]) -> None:
    """Partitions revoked: whoever gets them next starts from the group's commit."""
    for key in [k for k in _next if k[1] in tps]:
        del _next[key]


_admin: list[AIOKafkaAdminClient] = []
"""One admin client for the worker's life, made on first use."""


async def _committed(tp: TP) -> int | None:
    if not _admin:
        admin = AIOKafkaAdminClient(**client_options())
        await admin.start()
        _admin.append(admin)
    offsets = await _admin[0].list_consumer_group_offsets(
        app.conf.id, partitions=[TopicPartition(tp.topic, tp.partition)]
    )
    meta = offsets.get(TopicPartition(tp.topic, tp.partition))
    return None if meta is None or meta.offset < 0 else int(meta.offset)


async def _on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
    forget(revoked)


app.on_partitions_revoked.connect(cast(Any, _on_revoked))
