"""A message faust skipped at a rebalance is read back and handled before the next one."""

from __future__ import annotations

import asyncio

import pytest
from faust.types import TP

import app  # noqa: F401 - the App first
from agents import skipped_offsets
from app.log_reader import LoggedMessage


@pytest.fixture
def kafka(monkeypatch: pytest.MonkeyPatch) -> list[tuple[str, int, int, int]]:
    reads: list[tuple[str, int, int, int]] = []

    async def committed(tp: TP) -> int | None:
        return 5

    async def read_range(topic: str, partition: int, start: int, stop: int) -> list[LoggedMessage]:
        reads.append((topic, partition, start, stop))
        return [
            LoggedMessage(topic, partition, n, b"k", f"m{n}".encode()) for n in range(start, stop)
        ]

    monkeypatch.setattr(skipped_offsets, "_committed", committed)
    monkeypatch.setattr(skipped_offsets, "read_range", read_range)
    monkeypatch.setattr(skipped_offsets, "_next", {})
    return reads


def test_contiguous_offsets_from_the_commit_on_replay_nothing(kafka: list[object]) -> None:
    tp = TP("orders.events", 3)

    async def run() -> list[list[skipped_offsets.SkippedEvent]]:
        return [await skipped_offsets.skipped_before("orders-service", tp, n) for n in (5, 6, 7)]

    assert asyncio.run(run()) == [[], [], []]
    assert kafka == []


def test_a_jump_replays_what_lies_between_once(kafka: list[object]) -> None:
    tp = TP("inventory.commands", 0)

    async def run() -> list[list[skipped_offsets.SkippedEvent]]:
        return [await skipped_offsets.skipped_before("stock-service", tp, n) for n in (5, 18, 19)]

    first, jumped, after = asyncio.run(run())
    assert first == [] and after == []
    assert [e.value for e in jumped] == [f"m{n}".encode() for n in range(6, 18)]
    assert [e.message.offset for e in jumped] == list(range(6, 18))
    assert jumped[0].message.tp == tp
    assert kafka == [("inventory.commands", 0, 6, 18)]


def test_the_first_message_after_an_assignment_is_checked_against_the_commit(
    kafka: list[object],
) -> None:
    tp = TP("accounts.commands", 2)
    skipped = asyncio.run(skipped_offsets.skipped_before("accounts-service", tp, 8))
    assert [e.value for e in skipped] == [b"m5", b"m6", b"m7"]
    skipped_offsets.forget({tp})  # revoked: the next owner starts from the commit again
    assert asyncio.run(skipped_offsets.skipped_before("accounts-service", tp, 5)) == []


def test_each_agent_keeps_its_own_place(kafka: list[object]) -> None:
    tp = TP("orders.events", 1)

    async def run() -> list[skipped_offsets.SkippedEvent]:
        await skipped_offsets.skipped_before("orders-projection", tp, 5)
        await skipped_offsets.skipped_before("orders-projection", tp, 6)
        return await skipped_offsets.skipped_before("orders-timeline", tp, 5)

    assert asyncio.run(run()) == []


def test_a_replayed_message_does_not_move_the_place_back(kafka: list[object]) -> None:
    tp = TP("inventory.commands", 4)

    async def run() -> list[int]:
        jumped = await skipped_offsets.skipped_before("stock-service", tp, 9)  # 5..8 skipped
        for lost in jumped:  # guarded handles each one as a message of its own
            await skipped_offsets.skipped_before("stock-service", tp, lost.message.offset)
        return [len(await skipped_offsets.skipped_before("stock-service", tp, 10))]

    assert asyncio.run(run()) == [0]
