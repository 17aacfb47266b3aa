"""Windowed analytics: facts from the event topics, folded by event time on ONE partition.

Two agents:

* `analytics-facts` reads orders.events and payments.events (8 partitions, any
  worker) and turns each relevant event into a small metric fact; each batch of
  facts is sent as one message keyed "all" to the one-partition topic
  `analytics.facts`. It keeps no state, so
  it has no co-partitioning to get wrong; a redelivered event yields the same
  fact (same event id), which the fold ignores.
* `analytics` reads `analytics.facts` (one partition, so one worker at a time)
  and folds facts in batches into the `analytics` table: tumbling and hopping
  windows by `occurred_at`, late counters, dedup by event id, expiry.

Why a deliberate repartition to one key rather than per-partition
pre-aggregates: the figures are sums over everything, the volume after
filtering is small (a few facts per order), one fold makes dedup and lateness
exact and simple, and the reads need no scatter-gather across workers.
"""

from __future__ import annotations

import json
import logging
import time
from typing import Any

from agents.dead_letters import guarded
from app.main import app
from app.topics import analytics_facts, inputs, order_events, payment_events
from domain.analytics import fact_from_event
from models.upcasting import decode_event
from tables import analytics as t

log = logging.getLogger(__name__)

RELEVANT = frozenset(
    {
        "OrderPlaced",
        "OrderCancelled",
        "OrderShipped",
        "PaymentCaptured",
        "PaymentDeclined",
        "PaymentRefunded",
    }
)
BATCH = 1000
FACTS_PER_MESSAGE = 200
"""Facts per message on analytics.facts: even orders of 50 lines stay far below 1 MB."""
BATCH_WITHIN = 0.2
PURGE_EVERY_MS = 60_000
"""Expired windows and event ids are deleted each time event time passes a minute."""

ROUTE_KEY = t.ROUTE_KEY.encode()


@app.agent(inputs(order_events, payment_events), name="analytics-facts")
async def extract_facts(stream: Any) -> None:
    """Up to FACTS_PER_MESSAGE events at a time become ONE message of facts: the
    repartition costs one send per batch, not one per event. The batch is acked
    after the send (at least once; a re-sent fact is recognised by its event id)."""
    async for events in stream.take_events(FACTS_PER_MESSAGE, within=BATCH_WITHIN):
        facts: list[dict[str, Any]] = []

        async def collect(topic: str, raw: bytes, facts: list[dict[str, Any]] = facts) -> None:
            fact = extract(raw)
            if fact is not None:
                facts.append(fact)

        for event in events:
            await guarded("analytics-facts", event, collect)
        if facts:
            await analytics_facts.send(key=ROUTE_KEY, value=json.dumps(facts).encode())


def extract(raw: bytes) -> dict[str, Any] | None:
    # a cheap look at the type first: most events are not metrics
    if json.loads(raw).get("event_type") not in RELEVANT:
        return None
    return fact_from_event(decode_event(raw))


_last_purge = {"bucket": -1}


@app.agent(analytics_facts, name="analytics")
async def fold_facts(stream: Any) -> None:
    async for events in stream.take_events(BATCH, within=BATCH_WITHIN):
        facts: list[dict[str, Any]] = []
        for event in events:
            try:
                message = json.loads(event.value)
            except ValueError as error:  # never produced by us: log it, count nothing
                log.error(
                    "analytics: undecodable facts at offset %s: %r", event.message.offset, error
                )
                continue
            # a message is a list of facts (a single fact is accepted too)
            facts.extend(message if isinstance(message, list) else [message])
        if not facts:
            continue
        # take_events fills its buffer in another task: make the batch's last event the
        # current one, so the table knows the partition its writes belong to
        stream._set_current_event(events[-1])
        t.fold_batch(facts)
        t.folded_rate.add(len(facts))
        bucket = t.meta()["watermark"] // PURGE_EVERY_MS
        if bucket != _last_purge["bucket"]:
            _last_purge["bucket"] = bucket
            removed = t.purge()
            if removed:
                log.info("analytics: expired %d keys", removed)
        stream._set_current_event(None)


def folded_per_second() -> float:
    return t.folded_rate.rate(time.monotonic())
