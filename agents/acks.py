"""Acknowledging a partition's messages in offset order, whatever order they finish in.

A service finishes its messages concurrently, so they finish out of order. faust
commits the first run of consecutive acked offsets it holds, and checks that this
run starts where the last commit ended with an off-by-one (`min(acked) - committed
> 1` in `Consumer._new_offset`, where `committed` is already the next offset to read)
and not at all before the first commit. So acking offset 101 while 100 is still in
flight commits 102, and a crash then loses 100: its saga step never happens. Acked
in order, the committed offset never passes a message still being processed.
"""

from __future__ import annotations

import heapq
from collections.abc import Iterable
from typing import Any, Protocol

from faust.types import TP


class Ackable(Protocol):
    """A faust event, as far as acking goes: its message's place, and its ack."""

    @property
    def message(self) -> Any: ...

    def ack(self) -> Any: ...


class _Read:
    """A partition's messages read and not acked: their offsets in a heap (the earliest
    first), and each one's event with whether it is done."""

    def __init__(self) -> None:
        self.offsets: list[int] = []
        self.events: dict[int, tuple[Ackable, bool]] = {}

    def __len__(self) -> int:
        return len(self.events)


class InOrderAcks:
    """Holds each finished message's ack until every earlier one of its partition is done."""

    def __init__(self) -> None:
        self._pending: dict[TP, _Read] = {}
        self._given_up: dict[TP, int] = {}

    def taken(self, event: Ackable) -> None:
        """A message read: its ack waits for it, and holds back the later ones."""
        message = event.message
        given_up = self._given_up.get(message.tp)
        if given_up is not None:
            if message.offset > given_up:
                return  # after a message given up: acking it would commit past that one
            del self._given_up[message.tp]  # read again from before it: the partition is back
        read = self._pending.setdefault(message.tp, _Read())
        if message.offset not in read.events:
            read.events[message.offset] = (event, False)
            heapq.heappush(read.offsets, message.offset)

    def done(self, event: Ackable) -> None:
        """A message processed: ack it and every later finished one it held back."""
        message = event.message
        read = self._pending.get(message.tp)
        if read is None or message.offset not in read.events:
            return  # its partition was given up (`give_up`): the new owner reads it again
        read.events[message.offset] = (event, True)
        # per message on a service's path: only the earliest one's end acks anything
        while read.offsets and read.events[read.offsets[0]][1]:
            held, _ = read.events.pop(heapq.heappop(read.offsets))
            held.ack()

    def revoked(self, tps: Iterable[TP]) -> None:
        """Partitions taken away at a rebalance: nothing read from them before is acked
        any more. faust forgets a revoked partition's acks, but an ack that comes after
        would stay and, were the partition given back, be committed before its message
        was read again; whoever gets the partition reads those messages again."""
        for tp in tps:
            self._pending.pop(tp, None)
            self._given_up.pop(tp, None)

    def give_up(self, event: Ackable) -> None:
        """A message this worker will not finish (its partition moved): neither it nor any
        later message of its partition is acked here, so the next owner reads it again."""
        message = event.message
        self._pending.pop(message.tp, None)
        given_up = self._given_up.get(message.tp, message.offset)
        self._given_up[message.tp] = min(given_up, message.offset)

    def waiting(self) -> dict[Any, int]:
        """Messages read but not acked, by partition (for tests and logs)."""
        return {tp: len(pending) for tp, pending in self._pending.items() if pending}
