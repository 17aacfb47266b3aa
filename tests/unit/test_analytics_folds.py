"""The analytics as batched folds: events become messages of facts, facts become windows,
and a batch folded again (a crash, a rebuild) gives the same rows."""

from __future__ import annotations

import json
import random
from typing import Any

from domain.analytics import Config, window_key
from tables.analytics import FACTS_PER_MESSAGE, META, FactsFold, WindowFold
from tests.unit.analytics_oracle import brute_force
from tests.unit.records import Record, Rows
from tests.unit.test_analytics import NOW, T0, envelope, fact, mixed, normalized, windows_of


def message(offset: int, facts: list[dict[str, Any]], at: int = NOW) -> Record:
    return Record(offset, json.dumps(facts).encode(), b"all", "analytics.facts", timestamp=at)


def decoded(store: Rows) -> dict[str, Any]:
    return {key.decode(): json.loads(value) for key, value in store.items()}


def test_events_become_messages_of_facts_and_bad_events_failures() -> None:
    placed = envelope(
        "OrderPlaced",
        {
            "customer_id": "c",
            "lines": [{"sku": "A", "quantity": 1, "unit_price": "2.50"}],
            "discount": "0.00",
            "total": "2.50",
            "shipping_address": None,
        },
    )
    paid = envelope("OrderPaid", {"amount": "2.50"})  # not a metric
    count = FACTS_PER_MESSAGE + 1
    batch = [Record(n, placed.model_dump_json().encode()) for n in range(count)]
    batch += [Record(count, paid.model_dump_json().encode()), Record(count + 1, b"{oops")]

    folded = FactsFold().fold(batch, Rows())

    assert folded.rows == {}
    assert [len(json.loads(o.value or b"")) for o in folded.outputs] == [FACTS_PER_MESSAGE, 1]
    assert {o.topic for o in folded.outputs} == {"analytics.facts"}
    assert [r.offset for r, _ in folded.failures] == [count + 1]


def test_windows_folded_in_batches_equal_brute_force() -> None:
    facts = mixed(600, random.Random(7), 5 * 60_000)
    in_order = sorted(facts, key=lambda f: f["at"])
    store = Rows()
    fold = WindowFold(Config())
    for n in range(0, len(in_order), 50):  # 12 batches of 50 facts, 5 messages each
        chunks = [in_order[i : i + 10] for i in range(n, n + 50, 10)]
        store.apply(fold.fold([message(n + i, c) for i, c in enumerate(chunks)], store))

    rows = decoded(store)
    assert normalized(*windows_of(rows, Config())) == normalized(*brute_force(facts, Config()))
    assert rows[META]["processed"] == 600 and rows[META]["duplicates"] == 0


def test_facts_sent_twice_count_once() -> None:
    facts = [fact(n, T0 + n * 1000, "captured") for n in range(20)]
    store = Rows()
    fold = WindowFold(Config())
    store.apply(fold.fold([message(0, facts)], store))
    before = {k: v for k, v in decoded(store).items() if k != META}

    store.apply(fold.fold([message(1, facts[:5])], store))  # the extractor re-sent a batch

    after = decoded(store)
    assert {k: v for k, v in after.items() if k != META} == before
    assert after[META]["processed"] == 20 and after[META]["duplicates"] == 5


def test_a_malformed_message_is_a_failure_and_the_rest_is_folded() -> None:
    good = [fact(1, T0, "shipped")]
    batch = [message(0, good), Record(1, b"[{}]", timestamp=NOW), Record(2, b"nope")]

    folded = WindowFold(Config()).fold(batch, Rows())

    assert [r.offset for r, _ in folded.failures] == [1, 2]
    assert json.loads(folded.rows[META.encode()] or b"")["processed"] == 1


def test_expired_windows_are_deleted_whether_stored_or_written_in_the_batch() -> None:
    config = Config(retention=600)
    fold = WindowFold(config)
    store = Rows()
    store.apply(fold.fold([message(0, [fact(1, T0, "shipped")], at=T0)], store))
    old = window_key("1m", T0).encode()
    assert old in store

    # one batch: a fact long after (the old window expires), and one more in the past hour
    late_enough = T0 + 3 * 3_600_000
    batch = [message(1, [fact(2, late_enough, "shipped")], at=late_enough)]
    folded = fold.fold(batch, store)

    assert folded.rows[old] is None
    store.apply(folded)
    assert window_key("1m", late_enough).encode() in store
    assert not [k for k in store if k.startswith(b"s/") and int(k[2:]) < T0 + 3_600_000]


def test_the_watermark_follows_the_message_clock_not_the_wall_clock() -> None:
    far = T0 + 86_400_000
    folded = WindowFold(Config()).fold([message(0, [fact(1, far, "shipped")], at=T0)], Rows())
    assert json.loads(folded.rows[META.encode()] or b"")["watermark"] == T0 + 5 * 60_000


def test_a_window_written_and_expired_in_one_batch_is_not_written() -> None:
    fold = WindowFold(Config(retention=600))
    later = T0 + 3 * 3_600_000
    batch = [message(0, [fact(1, T0, "shipped")], at=T0), message(1, [fact(2, later)], at=later)]
    folded = fold.fold(batch, Rows())
    assert folded.rows[window_key("1m", T0).encode()] is None
    assert folded.rows[window_key("1m", later).encode()] is not None
