"""A message faust never handed over is read back from the log and handled: before the
next one of its partition, or, with nothing after it, once its agent is quiet."""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from dataclasses import dataclass, field

import pytest
from faust.types import TP

import app  # noqa: F401 - the App first
from agents import skipped_offsets
from agents.skipped_offsets import QuietPartitions, SkippedEvent
from app.log_reader import LoggedMessage
from app.settings import Settings


@dataclass
class Log:
    """The broker as these checks see it: commits, where logs begin and end, reads."""

    commits: dict[TP, int] = field(default_factory=dict)
    starts: dict[TP, int] = field(default_factory=dict)
    ends: dict[TP, int] = field(default_factory=dict)
    reads: list[tuple[str, int, int, int]] = field(default_factory=list)


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> Log:
    log = Log()

    async def committed(tps: list[TP]) -> dict[TP, int]:
        return {tp: log.commits[tp] for tp in tps if tp in log.commits}

    async def first_offsets(tps: list[TP]) -> dict[TP, int]:
        return {tp: log.starts.get(tp, 0) for tp in tps}

    async def log_ends(tps: list[TP]) -> dict[TP, int]:
        return {tp: log.ends[tp] for tp in tps}

    async def read_range(topic: str, partition: int, start: int, stop: int) -> list[LoggedMessage]:
        log.reads.append((topic, partition, start, stop))
        return [
            LoggedMessage(topic, partition, n, b"k", f"m{n}".encode()) for n in range(start, stop)
        ]

    monkeypatch.setattr(skipped_offsets, "_committed", committed)
    monkeypatch.setattr(skipped_offsets, "_first_offsets", first_offsets)
    monkeypatch.setattr(skipped_offsets, "_log_ends", log_ends)
    monkeypatch.setattr(skipped_offsets, "read_range", read_range)
    monkeypatch.setattr(skipped_offsets, "_next", {})
    return log


def committed_at_5(kafka: Log, *tps: TP) -> None:
    kafka.commits.update({tp: 5 for tp in tps})


def test_contiguous_offsets_from_the_commit_on_replay_nothing(kafka: Log) -> None:
    tp = TP("orders.events", 3)
    committed_at_5(kafka, tp)

    async def run() -> list[list[SkippedEvent]]:
        return [await skipped_offsets.skipped_before("orders-service", tp, n) for n in (5, 6, 7)]

    assert asyncio.run(run()) == [[], [], []]
    assert kafka.reads == []


def test_a_jump_replays_what_lies_between_once(kafka: Log) -> None:
    tp = TP("inventory.commands", 0)
    committed_at_5(kafka, tp)

    async def run() -> list[list[SkippedEvent]]:
        return [await skipped_offsets.skipped_before("stock-service", tp, n) for n in (5, 18, 19)]

    first, jumped, after = asyncio.run(run())
    assert first == [] and after == []
    assert [e.value for e in jumped] == [f"m{n}".encode() for n in range(6, 18)]
    assert [e.message.offset for e in jumped] == list(range(6, 18))
    assert jumped[0].message.tp == tp
    assert kafka.reads == [("inventory.commands", 0, 6, 18)]


def test_the_first_message_after_an_assignment_is_checked_against_the_commit(
    kafka: Log,
) -> None:
    tp = TP("accounts.commands", 2)
    committed_at_5(kafka, tp)
    skipped = asyncio.run(skipped_offsets.skipped_before("accounts-service", tp, 8))
    assert [e.value for e in skipped] == [b"m5", b"m6", b"m7"]
    skipped_offsets.forget({tp})  # revoked: the next owner starts from the commit again
    assert asyncio.run(skipped_offsets.skipped_before("accounts-service", tp, 5)) == []


def test_with_no_commit_the_first_message_is_checked_against_the_start_of_the_log(
    kafka: Log,
) -> None:
    # seen in the kill matrix: a partition the group never committed, taken over after a
    # kill; its first message never reached the agents, which began at offset 1
    tp = TP("orders.events", 2)
    skipped = asyncio.run(skipped_offsets.skipped_before("payments-service", tp, 1))
    assert [e.message.offset for e in skipped] == [0]
    kafka.starts[TP("orders.events", 4)] = 7  # retention moved the log's start
    later = TP("orders.events", 4)
    assert asyncio.run(skipped_offsets.skipped_before("payments-service", later, 7)) == []


def test_each_agent_keeps_its_own_place(kafka: Log) -> None:
    tp = TP("orders.events", 1)
    committed_at_5(kafka, tp)

    async def run() -> list[SkippedEvent]:
        await skipped_offsets.skipped_before("payments-service", tp, 5)
        await skipped_offsets.skipped_before("payments-service", tp, 6)
        return await skipped_offsets.skipped_before("shipping-service", tp, 5)

    assert asyncio.run(run()) == []


def test_a_replayed_message_does_not_move_the_place_back(kafka: Log) -> None:
    tp = TP("inventory.commands", 4)
    committed_at_5(kafka, tp)

    async def run() -> list[int]:
        jumped = await skipped_offsets.skipped_before("stock-service", tp, 9)  # 5..8 skipped
        for lost in jumped:  # guarded handles each one as a message of its own
            await skipped_offsets.skipped_before("stock-service", tp, lost.message.offset)
        return [len(await skipped_offsets.skipped_before("stock-service", tp, 10))]

    assert asyncio.run(run()) == [0]


# --- a lost message with nothing after it -------------------------------------------

ORDERS_2 = TP("orders.events", 2)


class Agent:
    """A service agent as the quiet check sees it, recording what it is handed."""

    def __init__(self, quiet: QuietPartitions, name: str = "payments-service") -> None:
        self.turn = asyncio.Lock()
        self.handed: list[int] = []
        self.reader = quiet.watch(name, ["orders.events"], self.take, self.turn)

    async def take(self, lost: SkippedEvent) -> None:
        assert self.turn.locked()  # in order with the agent's own messages
        self.handed.append(lost.message.offset)


def assigned(*tps: TP) -> Iterable[TP]:
    return set(tps)


async def checks(quiet: QuietPartitions, n: int, *tps: TP) -> list[int]:
    return [await quiet.check(lambda: assigned(*tps)) for _ in range(n)]


async def test_a_lost_last_message_is_handed_over_once_its_agent_is_quiet(kafka: Log) -> None:
    quiet = QuietPartitions()
    agent = Agent(quiet)
    skipped_offsets._next[("payments-service", ORDERS_2)] = 3  # it took offsets up to 2
    kafka.ends[ORDERS_2] = 4  # offset 3 never reached it, and nothing came after
    assert await checks(quiet, 3, ORDERS_2) == [0, 1, 0]  # quiet from the second check
    assert agent.handed == [3]
    assert kafka.reads == [("orders.events", 2, 3, 4)]


async def test_an_agent_that_took_a_message_since_the_last_check_is_not_quiet(
    kafka: Log,
) -> None:
    quiet = QuietPartitions()
    agent = Agent(quiet)
    skipped_offsets._next[("payments-service", ORDERS_2)] = 3
    kafka.ends[ORDERS_2] = 4  # in its buffer, say: it is busy with other partitions
    for _ in range(3):
        assert await quiet.check(lambda: assigned(ORDERS_2)) == 0
        agent.reader.taken += 1
    assert agent.handed == [] and kafka.reads == []


async def test_an_agent_handling_a_message_is_not_quiet(kafka: Log) -> None:
    quiet = QuietPartitions()
    agent = Agent(quiet)
    skipped_offsets._next[("payments-service", ORDERS_2)] = 3
    kafka.ends[ORDERS_2] = 4
    async with agent.turn:
        assert await checks(quiet, 3, ORDERS_2) == [0, 0, 0]
    assert agent.handed == []


async def test_after_a_rebalance_no_agent_is_quiet_before_a_whole_check(kafka: Log) -> None:
    quiet = QuietPartitions()
    agent = Agent(quiet)
    skipped_offsets._next[("payments-service", ORDERS_2)] = 3
    kafka.ends[ORDERS_2] = 4  # assigned just now: faust has not fetched it yet
    assert await checks(quiet, 1, ORDERS_2) == [0]
    quiet.restart()
    assert await checks(quiet, 1, ORDERS_2) == [0]
    assert agent.handed == []
    assert await checks(quiet, 1, ORDERS_2) == [1]  # still nothing a whole check later


async def test_after_the_worker_was_held_up_no_agent_is_quiet_before_a_whole_check(
    kafka: Log,
) -> None:
    now = [0.0]
    quiet = QuietPartitions(clock=lambda: now[0])
    agent = Agent(quiet)
    skipped_offsets._next[("payments-service", ORDERS_2)] = 3
    kafka.ends[ORDERS_2] = 4  # sent while the worker was frozen: not fetched yet
    assert await checks(quiet, 1, ORDERS_2) == [0]
    now[0] += 60.0  # SIGSTOPped a minute: the next check comes late
    assert await checks(quiet, 1, ORDERS_2) == [0]
    assert agent.handed == []
    now[0] += skipped_offsets.QUIET_CHECK_SECONDS
    assert await checks(quiet, 1, ORDERS_2) == [1]  # a whole check later, still nothing


async def test_a_partition_not_seen_yet_starts_at_its_commit_or_the_start_of_its_log(
    kafka: Log,
) -> None:
    quiet = QuietPartitions()
    agent = Agent(quiet)
    committed, never = TP("orders.events", 5), TP("orders.events", 6)
    kafka.commits[committed] = 2
    kafka.ends.update({committed: 2, never: 1})
    assert await checks(quiet, 2, committed, never) == [0, 1]
    assert agent.handed == [0]
    assert kafka.reads == [("orders.events", 6, 0, 1)]


async def test_only_assigned_partitions_of_its_own_topics_are_checked(kafka: Log) -> None:
    quiet = QuietPartitions()
    agent = Agent(quiet)
    commands = TP("orders.commands", 2)
    skipped_offsets._next[("payments-service", ORDERS_2)] = 3
    kafka.ends.update({ORDERS_2: 4, commands: 9})
    assert await checks(quiet, 2, commands) == [0, 0]  # orders.events:2 is not assigned
    assert agent.handed == [] and kafka.reads == []


def test_the_quiet_check_runs_every_two_seconds_by_default(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.delenv("SERVICE_QUIET_CHECK_SECONDS", raising=False)
    assert Settings().service_quiet_check_seconds == 2.0


@pytest.mark.parametrize("raw", ["0", "-1"])
def test_a_quiet_check_that_never_comes_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, raw: str
) -> None:
    monkeypatch.setenv("SERVICE_QUIET_CHECK_SECONDS", raw)
    with pytest.raises(SystemExit, match="SERVICE_QUIET_CHECK_SECONDS must be above 0"):
        Settings()
