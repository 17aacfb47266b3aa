"""Acks in offset order: why (faust commits past a message still in flight when acks
come out of order) and how (agents/acks.py holds each ack until the earlier ones)."""

from __future__ import annotations

from collections import defaultdict
from dataclasses import dataclass, field
from types import SimpleNamespace
from typing import Any

from faust.transport.consumer import Consumer
from faust.types import TP
from intervaltree import IntervalTree

from agents.acks import InOrderAcks

ORDERS = TP("orders.events", 3)
OTHER = TP("orders.events", 4)


def faust_would_commit(committed: int | None, acked: list[int]) -> int | None:
    """The offset faust's consumer commits next, by its own code, for these acks."""
    consumer: Any = SimpleNamespace(
        _acked=defaultdict(list, {ORDERS: list(acked)}),
        _acked_index=defaultdict(set, {ORDERS: set(acked)}),
        _gap=defaultdict(IntervalTree),  # no offsets missing from the log
        _committed_offset=defaultdict(lambda: None, {ORDERS: committed}),
    )
    return Consumer._new_offset(consumer, ORDERS)


def test_faust_commits_past_a_message_in_flight_when_the_next_one_is_acked_first() -> None:
    """Committed 100 means "read 100 next": with 100 in flight and 101 acked, faust still
    commits 102, so a crash loses 100. If this starts failing, faust fixed it upstream."""
    assert faust_would_commit(committed=100, acked=[101]) == 102
    assert faust_would_commit(committed=None, acked=[5, 6]) == 7  # before any commit
    assert faust_would_commit(committed=100, acked=[102]) is None  # two apart: held


@dataclass
class Event:
    """What the acker sees of a faust event: its message's partition and offset."""

    tp: TP
    offset: int
    acked: list[int] = field(default_factory=list)

    @property
    def message(self) -> Any:
        return SimpleNamespace(tp=self.tp, offset=self.offset)

    def ack(self) -> None:
        self.acked.append(self.offset)


def events(tp: TP, *offsets: int, log: list[int]) -> list[Any]:
    return [Event(tp, offset, log) for offset in offsets]


def test_a_message_finished_early_waits_for_the_earlier_ones_of_its_partition() -> None:
    acks, log = InOrderAcks(), list[int]()
    first, second, third = events(ORDERS, 100, 101, 102, log=log)
    for event in (first, second, third):
        acks.taken(event)
    acks.done(third)
    acks.done(second)
    assert log == []  # 100 is still in flight: nothing may be committed past it
    acks.done(first)
    assert log == [100, 101, 102]
    assert acks.waiting() == {}


def test_partitions_do_not_hold_each_other_back() -> None:
    acks, log = InOrderAcks(), list[int]()
    slow = Event(ORDERS, 100, log)
    quick = Event(OTHER, 7, log)
    acks.taken(slow)
    acks.taken(quick)
    acks.done(quick)
    assert log == [7]
    assert acks.waiting() == {ORDERS: 1}


def test_a_message_faust_skipped_and_read_back_late_is_acked_in_its_place() -> None:
    acks, log = InOrderAcks(), list[int]()
    current, lost = Event(ORDERS, 10, log), Event(ORDERS, 8, log)
    acks.taken(current)
    acks.taken(lost)  # registered after, but earlier in the log
    acks.done(current)
    assert log == []
    acks.done(lost)
    assert log == [8, 10]


def test_after_a_message_is_given_up_no_later_one_of_its_partition_is_acked() -> None:
    acks, log = InOrderAcks(), list[int]()
    moved, later = events(ORDERS, 100, 101, log=log)
    acks.taken(moved)
    acks.taken(later)
    acks.give_up(moved)
    acks.done(later)
    acks.taken(Event(ORDERS, 102, log))
    acks.done(Event(ORDERS, 102, log))
    assert log == []  # the next owner reads 100 onwards again


def test_the_partition_read_again_from_before_what_was_given_up_is_acked_again() -> None:
    acks, log = InOrderAcks(), list[int]()
    acks.taken(Event(ORDERS, 100, log))
    acks.give_up(Event(ORDERS, 100, log))
    again = Event(ORDERS, 100, log)
    acks.taken(again)
    acks.done(again)
    assert log == [100]


def test_nothing_read_before_a_rebalance_is_acked_after_it() -> None:
    """faust forgets a revoked partition's acks; a late one would be committed once the
    partition came back, before its message was read again."""
    acks, log = InOrderAcks(), list[int]()
    old = Event(ORDERS, 100, log)
    acks.taken(old)
    acks.revoked({ORDERS, OTHER})
    acks.done(old)
    assert log == []
    again = Event(ORDERS, 100, log)  # read again after the partition came back
    acks.taken(again)
    acks.done(again)
    assert log == [100]
