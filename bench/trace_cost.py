"""What carrying the trace costs the saga's hot path, with OpenTelemetry off (the default).

Every record of an order carries a `traceparent` header (models/tracing.py), so each
record pays: one more header to encode when produced, to decode each time a reader
fetches it, and a look-up among its headers where a step reads it; each batch pays a
`SPANS is None` test and its log context. This times each of those pieces alone (the
same calls the workers make, aiokafka's C record codec included), with and without the
trace, and adds them up per order:

    .venv/bin/python -m bench.trace_cost [--records-per-order 24] [--readers 4]

Timing figures vary with the machine's load: compare the deltas with the saga's CPU
per order (bench.saga: ~20-25 ms on this machine), not with a fixed number.
"""

from __future__ import annotations

import argparse
import timeit
from collections.abc import Callable
from typing import Any

from aiokafka.record.default_records import DefaultRecordBatch, DefaultRecordBatchBuilder

from app import tracing
from app.logs import LOG_CONTEXT
from models.tracing import new_traceparent, trace_headers, trace_of

TRACE = new_traceparent()
COMMAND_ID = b"0b7e5d1c-2f6a-5c1e-9d3b-7a1f4e2c8b90"
FINGERPRINT = b"ab" * 32
VALUE = b"x" * 420  # about an event envelope's size
KEY = b"order-000123"


def per_call(fun: Callable[[], Any], number: int = 50_000) -> float:
    """Microseconds per call: the best of 5 runs (the least disturbed by other work)."""
    return min(timeit.repeat(fun, number=number, repeat=5)) / number * 1e6


def produce(headers: list[tuple[str, bytes]]) -> Callable[[], Any]:
    """Encode 100 records into a batch, as the producer does before a send."""

    def run() -> None:
        builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, 0, 1 << 20)
        for offset in range(100):
            builder.append(offset, timestamp=0, key=KEY, value=VALUE, headers=headers)
        builder.build()

    return run


def consume(headers: list[tuple[str, bytes]]) -> Callable[[], Any]:
    """Decode a batch of 100 records and read each one's headers, as a reader does."""
    builder = DefaultRecordBatchBuilder(2, 0, 0, -1, -1, 0, 1 << 20)
    for offset in range(100):
        builder.append(offset, timestamp=0, key=KEY, value=VALUE, headers=headers)
    data = bytes(builder.build())

    def run() -> None:
        for record in DefaultRecordBatch(bytearray(data)):
            trace_of(record.headers)

    return run


def batch_overhead() -> None:
    """What each batch of each reader adds, spans off: the context of its log lines and
    one test for spans."""
    LOG_CONTEXT.set({"reader": "saga", "topic": "t", "partition": 0, "offset": 1, "records": 5})
    if tracing.SPANS is not None:
        raise AssertionError("spans are on")


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--records-per-order", type=int, default=24)
    parser.add_argument("--readers", type=int, default=4, help="readers of each record")
    parser.add_argument("--batches-per-order", type=int, default=30)
    args = parser.parse_args(argv)
    assert tracing.SPANS is None, "this measures the default: spans off"

    event_headers = [("command", COMMAND_ID), ("fingerprint", FINGERPRINT)]
    traced_headers = [*event_headers, ("traceparent", TRACE)]
    rows = [
        ("trace_headers (a command, an answer)", per_call(lambda: trace_headers(TRACE))),
        ("trace_of, 3 headers", per_call(lambda: trace_of(traced_headers))),
        ("new_traceparent (a request without)", per_call(new_traceparent)),
        ("a batch's context and spans test", per_call(batch_overhead)),
    ]
    produce_off = per_call(produce(event_headers), 200) / 100
    produce_on = per_call(produce(traced_headers), 200) / 100
    consume_off = per_call(consume(event_headers), 500) / 100
    consume_on = per_call(consume(traced_headers), 500) / 100
    rows += [
        ("encode a record, 2 headers", produce_off),
        ("encode a record, 3 headers", produce_on),
        ("decode a record + trace_of, 2 headers", consume_off),
        ("decode a record + trace_of, 3 headers", consume_on),
    ]
    for name, micros in rows:
        print(f"{name:<42} {micros:8.3f} us")
    figures = dict(rows)
    per_record = (
        (produce_on - produce_off)
        + args.readers * (consume_on - consume_off)
        + figures["trace_headers (a command, an answer)"]  # about one list and tuple more
    )
    per_order = (
        args.records_per_order * per_record
        + args.batches_per_order * figures["a batch's context and spans test"]
        + figures["new_traceparent (a request without)"]
    )
    print(
        f"per order ({args.records_per_order} records, each read by {args.readers} readers, "
        f"{args.batches_per_order} batches): {per_order:.1f} us of CPU, "
        f"{per_order / 20_000:.3%} of the saga's ~20 ms"
    )


if __name__ == "__main__":
    main()
