"""Whole appends (app/record_batches.py): every command's events in one record batch, as
many commands in each as fit, and the batch as built holds exactly what was packed.

No broker: the producer is a stand-in that keeps the record batches it is handed;
they are read back with aiokafka's own record batch reader.
"""

from __future__ import annotations

import asyncio
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatch
from hypothesis import given, settings
from hypothesis import strategies as st

from app.record_batches import BATCH_HEADER_BYTES, Record, pack, send_record_batch


def record(n: int, value_bytes: int = 100) -> Record:
    return Record(f"k{n}".encode(), b"v" * value_bytes, [("command_id", f"c{n}".encode())])


class Producer:
    """Keeps each record batch it is handed, built as the sender would send it."""

    def __init__(self) -> None:
        self._message_accumulator = type("Accumulator", (), {"_compression_type": 0})()
        self.sent: list[tuple[str, int, bytes]] = []

    async def send_batch(self, builder: Any, topic: str, *, partition: int) -> Any:
        builder._set_producer_state(producer_id=7, producer_epoch=0, base_sequence=0)
        self.sent.append((topic, partition, bytes(builder._build())))
        return asyncio.get_running_loop().create_future()


def read_back(buffer: bytes) -> list[Record]:
    batch = DefaultRecordBatch(buffer)
    return [
        Record(bytes(r.key), bytes(r.value), [(k, bytes(v)) for k, v in r.headers]) for r in batch
    ]


def test_commands_share_a_record_batch_until_it_is_full_and_none_is_split() -> None:
    groups = [[record(1), record(2)], [record(3)], [record(4), record(5), record(6)]]
    one = record(1).most_bytes
    assert pack(groups, max_bytes=BATCH_HEADER_BYTES + 10 * one) == [
        [record(n) for n in range(1, 7)]
    ]
    # room for three records a batch: the second command joins the first, the third
    # goes whole into the next batch rather than split across two
    assert pack(groups, max_bytes=BATCH_HEADER_BYTES + 3 * one) == [
        [record(1), record(2), record(3)],
        [record(4), record(5), record(6)],
    ]
    assert pack(groups, max_bytes=BATCH_HEADER_BYTES + 2 * one) == [
        [record(1), record(2)],
        [record(3)],
        [record(4), record(5), record(6)],
    ]


def test_a_command_larger_than_a_batch_goes_alone_and_empty_ones_add_nothing() -> None:
    groups = [[], [record(1)], [record(2, 5000), record(3, 5000)], [], [record(4)]]
    assert pack(groups, max_bytes=1) == [
        [record(1)],
        [record(2, 5000), record(3, 5000)],
        [record(4)],
    ]
    assert pack([[], []], max_bytes=1000) == []


texts = st.binary(min_size=0, max_size=3000)
records = st.builds(
    Record,
    key=st.binary(min_size=1, max_size=200),
    value=texts,
    headers=st.lists(
        st.tuples(st.text(min_size=1, max_size=30), st.binary(max_size=300)), max_size=6
    ),
)


@settings(max_examples=200, deadline=None)
@given(
    groups=st.lists(st.lists(records, min_size=1, max_size=8), max_size=12),
    limit=st.integers(1, 40_000),
)
def test_what_is_packed_is_sent_as_one_record_batch_each_in_order(
    groups: list[list[Record]], limit: int
) -> None:
    batches = pack(groups, max_bytes=limit)
    assert [r for batch in batches for r in batch] == [r for group in groups for r in group]
    starts = {id(group[0]) for group in groups}
    for batch in batches:  # a batch begins with a command's first event
        assert id(batch[0]) in starts

    producer = Producer()

    async def send_all() -> None:
        for batch in batches:
            await send_record_batch(producer, "t.events", 3, batch, 1_700_000_000_000)

    asyncio.run(send_all())
    assert [(t, p) for t, p, _ in producer.sent] == [("t.events", 3)] * len(batches)
    assert [read_back(buffer) for *_, buffer in producer.sent] == batches
    for batch, (*_, buffer) in zip(batches, producer.sent, strict=True):
        bound = BATCH_HEADER_BYTES + sum(r.most_bytes for r in batch)
        if sum(id(r) in starts for r in batch) > 1:  # several commands: within the limit
            assert bound <= limit
        assert len(buffer) <= bound
