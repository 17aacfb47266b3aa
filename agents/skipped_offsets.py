"""Messages faust never handed to an agent: read them back from the partition, handle them.

faust 0.15.3 can lose a message at a rebalance: its drain loop hands a message
to the stream in `wait_first(callback(message), suspend_flow.wait())`, and when
the flow is suspended first the hand-over is cancelled, yet the message counts
as read; the next message then leaves a "gap" that faust commits past (it
takes gaps for compaction or transaction markers). It also loses the first
messages of a partition the group has never committed: fetched while the
streams resume after an assignment, they never reach the agents, and the
seek to the committed offsets that follows skips a partition without one.
The message is never processed anywhere: a command never decided, a saga step
never taken.

Our input topics have contiguous offsets (no compaction; under at_least_once no
transaction markers), so the log says what each agent must have seen, checked
two ways:

* each message (`skipped_before`, from `guarded`) must be the next one of its
  partition for this agent: for the first of an assignment, the group's
  committed offset, or the partition's first offset when it has none; after the
  previous one since. What lies between is read straight from Kafka and handled
  first.
* a lost message with nothing after it leaves no gap to see, so every
  QUIET_CHECK_SECONDS each agent that took no message in the last check has its
  assigned partitions compared with their log ends (`QuietPartitions`): what is
  there past its place is read back and handled, in the agent's turn.

Handlers are idempotent, so a false alarm costs a repeat, never a wrong result.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable, Iterable
from dataclasses import dataclass
from typing import Any, cast

from aiokafka import AIOKafkaConsumer, TopicPartition
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.errors import KafkaError
from faust.types import TP

from app.kafka_clients import client_options
from app.log_reader import LoggedMessage, read_range
from app.main import app
from app.metrics import SKIPPED_REPLAYED
from app.settings import settings

log = logging.getLogger(__name__)

QUIET_CHECK_SECONDS = settings.service_quiet_check_seconds
"""How often idle agents are checked against their partitions' log ends: a message
lost with nothing after it is handled within about two of these."""

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
        """Nothing to mark in faust, which never handed it over: the commit passes it with
        the next message acknowledged after it."""
        return True


async def skipped_before(agent: str, tp: TP, offset: int) -> list[SkippedEvent]:
    """The messages of `tp` that `agent` should have seen before `offset` and did not."""
    key = (agent, tp)
    expected = _next.get(key)
    if expected is None:
        expected = (await _starts([tp]))[tp]
    _next[key] = max(offset + 1, expected)  # a replayed message never moves it back
    if offset <= expected:
        return []
    return await _read_back(agent, tp, expected, offset, "jumped from offset")


async def _read_back(agent: str, tp: TP, start: int, stop: int, why: str) -> list[SkippedEvent]:
    skipped = [
        SkippedEvent(message) for message in await read_range(tp.topic, tp.partition, start, stop)
    ]
    log.warning(
        "%s: %s:%d %s %d to %d; handling the %d message(s) faust never handed over",
        agent,
        tp.topic,
        tp.partition,
        why,
        start,
        stop,
        len(skipped),
    )
    SKIPPED_REPLAYED.labels(agent=agent).inc(len(skipped))
    return skipped


def forget(tps: Iterable[TP]) -> None:
    """Partitions revoked: whoever gets them next starts from the group's commit."""
    gone = set(tps)
    for key in [k for k in _next if k[1] in gone]:
        del _next[key]


# --- where a partition starts for an agent that has seen none of it ----------------


@dataclass
class _Clients:
    """An admin client and a probe consumer for the worker's life, made on first use."""

    admin: AIOKafkaAdminClient | None = None
    probe: AIOKafkaConsumer | None = None


_clients = _Clients()


async def _admin() -> AIOKafkaAdminClient:
    if _clients.admin is None:
        _clients.admin = AIOKafkaAdminClient(**client_options())
        await _clients.admin.start()
    return _clients.admin


async def _probe() -> AIOKafkaConsumer:
    if _clients.probe is None:
        _clients.probe = AIOKafkaConsumer(enable_auto_commit=False, **client_options())
        await _clients.probe.start()
    return _clients.probe


async def _committed(tps: list[TP]) -> dict[TP, int]:
    """The group's committed offsets of those partitions that have one."""
    offsets = await (await _admin()).list_consumer_group_offsets(
        app.conf.id, partitions=[TopicPartition(tp.topic, tp.partition) for tp in tps]
    )
    return {
        TP(tp.topic, tp.partition): int(meta.offset)
        for tp, meta in offsets.items()
        if meta is not None and meta.offset >= 0
    }


async def _first_offsets(tps: list[TP]) -> dict[TP, int]:
    """Where each partition's log begins now (retention may have moved it past 0)."""
    found = await (await _probe()).beginning_offsets(
        [TopicPartition(tp.topic, tp.partition) for tp in tps]
    )
    return {TP(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}


async def _log_ends(tps: list[TP]) -> dict[TP, int]:
    found = await (await _probe()).end_offsets(
        [TopicPartition(tp.topic, tp.partition) for tp in tps]
    )
    return {TP(tp.topic, tp.partition): int(offset) for tp, offset in found.items()}


async def _starts(tps: list[TP]) -> dict[TP, int]:
    """Where faust starts each partition for the group: its commit, else
    (auto_offset_reset earliest) the log's first offset."""
    starts = await _committed(tps)
    missing = [tp for tp in tps if tp not in starts]
    if missing:
        starts.update(await _first_offsets(missing))
    return starts


# --- the quiet check ---------------------------------------------------------------


@dataclass
class Reader:
    """An agent as the quiet check sees it: the topics it reads, how it takes a message,
    the turn it holds while it takes one (so a message read back is handled in order
    with its own), and how many it has taken."""

    topics: frozenset[str]
    take: Callable[[SkippedEvent], Awaitable[None]]
    turn: asyncio.Lock
    taken: int = 0


class QuietPartitions:
    """Every QUIET_CHECK_SECONDS: each idle agent's assigned partitions against their log
    ends. Idle: it took no message since the last check and is not handling one, so
    nothing waits in its buffer; a partition whose log goes on past its place then holds
    messages faust never handed over."""

    def __init__(self, clock: Callable[[], float] = time.monotonic) -> None:
        self.readers: dict[str, Reader] = {}
        self._seen: dict[str, int] = {}
        self._clock = clock
        self._last_check: float | None = None

    def watch(
        self,
        agent: str,
        topics: Iterable[str],
        take: Callable[[SkippedEvent], Awaitable[None]],
        turn: asyncio.Lock,
    ) -> Reader:
        reader = self.readers[agent] = Reader(frozenset(topics), take, turn)
        return reader

    def restart(self) -> None:
        """A rebalance: no agent counts as quiet until a whole check after it, so faust has
        that long to fetch its new partitions before their log ends are read."""
        self._seen.clear()

    async def check(self, assignment: Callable[[], Iterable[TP]]) -> int:
        """Read back and hand over what idle agents lack; how many messages that was."""
        now, last = self._clock(), self._last_check
        self._last_check = now
        if last is not None and now - last > 2 * QUIET_CHECK_SECONDS:
            # the worker was held up (frozen, or its loop blocked) since the last check:
            # faust could not fetch meanwhile either, so a whole check starts from now
            self.restart()
        assigned = set(assignment())
        idle = {
            agent: reader
            for agent, reader in self.readers.items()
            if self._seen.get(agent) == reader.taken and not reader.turn.locked()
        }
        self._seen = {agent: reader.taken for agent, reader in self.readers.items()}
        places = {
            (agent, tp): _next.get((agent, tp))
            for agent, reader in idle.items()
            for tp in assigned
            if tp.topic in reader.topics
        }
        if not places:
            return 0
        tps = sorted({tp for _, tp in places})
        ends = await _log_ends(tps)
        unseen = sorted({tp for (_, tp), place in places.items() if place is None})
        starts = await _starts(unseen) if unseen else {}
        handed = 0
        for (agent, tp), place in places.items():
            start = starts[tp] if place is None else place
            if ends[tp] <= start:
                continue
            reader = idle[agent]
            async with reader.turn:
                if _next.get((agent, tp)) != place or tp not in set(assignment()):
                    continue  # it took a message meanwhile: the check on each covers it
                lost = await _read_back(agent, tp, start, ends[tp], "quiet at offset")
                _next[(agent, tp)] = ends[tp]
                for event in lost:
                    await reader.take(event)
                    handed += 1
        return handed


quiet_partitions = QuietPartitions()


@app.timer(QUIET_CHECK_SECONDS)
async def _check_quiet_partitions() -> None:
    if app.rebalancing or not quiet_partitions.readers:
        return  # the assignment's signal restarts the count
    try:
        await quiet_partitions.check(app.consumer.assignment)
    except (KafkaError, OSError) as error:  # the next check tries again
        log.warning("quiet partitions: %r", error)


async def _on_revoked(sender: Any, revoked: set[TP], **kwargs: Any) -> None:
    forget(revoked)
    quiet_partitions.restart()


async def _on_assigned(sender: Any, assigned: set[TP], **kwargs: Any) -> None:
    quiet_partitions.restart()


app.on_partitions_revoked.connect(cast(Any, _on_revoked))
app.on_partitions_assigned.connect(cast(Any, _on_assigned))
