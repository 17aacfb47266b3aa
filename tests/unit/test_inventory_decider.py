"""The inventory deciders as a story: stock per SKU is never oversold, and each order's
reservation collects one answer per line, then reports the order reserved or short.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime

import pytest

from domain.errors import NotFound
from domain.inventory import RESERVATIONS, STOCKS, InsufficientStock
from models.envelope import CommandEnvelope
from models.inventory import (
    AddStock,
    CancelReservation,
    CommitReservation,
    CommitStock,
    InventoryReservationFailed,
    InventoryReserved,
    LineRejected,
    LineReserved,
    NoteOrder,
    OrderNoted,
    RecordLine,
    ReleaseStock,
    Reservation,
    ReservationCancelled,
    ReservationCommand,
    ReservationCommitted,
    ReservationEvent,
    ReservationReleased,
    ReservationStarted,
    ReserveStock,
    StartReservation,
    Stock,
    StockAdded,
    StockCommand,
    StockCommitted,
    StockEvent,
    StockReleased,
    StockReserved,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)


# --- Stock -------------------------------------------------------------------------------------


def stock_given(*events: StockEvent, sku: str = "A") -> Stock:
    state = STOCKS.initial_state(sku)
    for event in events:
        state = STOCKS.evolve(state, event, NOW)
    return state


def stock_when(command: StockCommand, state: Stock) -> list[StockEvent]:
    return STOCKS.decide(command, state)


def assert_balanced(stock: Stock) -> None:
    assert stock.reserved == sum(stock.reservations.values())
    assert stock.reserved + stock.available == stock.on_hand
    assert 0 <= stock.reserved <= stock.on_hand


def test_added_stock_is_on_hand_and_available() -> None:
    assert stock_when(AddStock(quantity=5), stock_given()) == [StockAdded(quantity=5)]
    stock = stock_given(StockAdded(quantity=5), StockAdded(quantity=2))
    assert (stock.on_hand, stock.reserved, stock.available) == (7, 0, 7)


def test_a_reservation_holds_units_for_an_order() -> None:
    stock = stock_given(StockAdded(quantity=5))

    assert stock_when(ReserveStock(order_id="o1", quantity=5), stock) == [
        StockReserved(order_id="o1", quantity=5)
    ]
    held = stock_given(StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3))
    assert (held.on_hand, held.reserved, held.available) == (5, 3, 2)
    assert held.reservations == {"o1": 3}


def test_more_than_is_available_is_refused_naming_what_is_available() -> None:
    stock = stock_given(StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3))

    with pytest.raises(InsufficientStock) as refused:
        stock_when(ReserveStock(order_id="o2", quantity=3), stock)

    assert refused.value.code == "insufficient_stock"
    assert refused.value.details == {"sku": "A", "requested": 3, "available": 2}


def test_an_unknown_sku_is_not_found() -> None:
    with pytest.raises(NotFound) as refused:
        stock_when(ReserveStock(order_id="o1", quantity=1), stock_given(sku="Z"))

    assert refused.value.details == {"sku": "Z"}


def test_refusals_through_execute_are_answered_and_change_nothing() -> None:
    stock = stock_given(StockAdded(quantity=1))
    command = CommandEnvelope(
        command_id="r1",
        command_type="ReserveStock",
        aggregate_id="A",
        payload={"order_id": "o1", "quantity": 2},
        correlation_id="o1",
    )

    result, after = STOCKS.execute(command, stock, NOW)

    assert (result.outcome, result.version) == ("rejected", 1)
    assert result.rejection is not None and result.rejection.code == "insufficient_stock"
    assert result.rejection.details["available"] == 1
    assert after == stock


def test_reserving_for_the_same_order_twice_decides_nothing() -> None:
    stock = stock_given(StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3))

    assert stock_when(ReserveStock(order_id="o1", quantity=3), stock) == []


def test_release_gives_back_exactly_what_the_order_held() -> None:
    stock = stock_given(StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3))

    assert stock_when(ReleaseStock(order_id="o1"), stock) == [
        StockReleased(order_id="o1", quantity=3)
    ]
    released = stock_given(
        StockAdded(quantity=5),
        StockReserved(order_id="o1", quantity=3),
        StockReleased(order_id="o1", quantity=3),
    )
    assert (released.on_hand, released.reserved, released.reservations) == (5, 0, {})


def test_commit_takes_the_held_units_off_hand() -> None:
    stock = stock_given(StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3))

    assert stock_when(CommitStock(order_id="o1"), stock) == [
        StockCommitted(order_id="o1", quantity=3)
    ]
    committed = stock_given(
        StockAdded(quantity=5),
        StockReserved(order_id="o1", quantity=3),
        StockCommitted(order_id="o1", quantity=3),
    )
    assert (committed.on_hand, committed.reserved, committed.available) == (2, 0, 2)


@pytest.mark.parametrize("command", [ReleaseStock(order_id="o2"), CommitStock(order_id="o2")])
def test_release_and_commit_touch_only_an_existing_reservation(command: StockCommand) -> None:
    stock = stock_given(StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3))

    assert stock_when(command, stock) == []
    assert stock_when(command, stock_given()) == []  # nor an unknown SKU


def test_a_released_or_committed_reservation_is_not_released_or_committed_again() -> None:
    base: list[StockEvent] = [StockAdded(quantity=5), StockReserved(order_id="o1", quantity=3)]
    for end in (
        StockReleased(order_id="o1", quantity=3),
        StockCommitted(order_id="o1", quantity=3),
    ):
        after = stock_given(*base, end)
        assert stock_when(ReleaseStock(order_id="o1"), after) == []
        assert stock_when(CommitStock(order_id="o1"), after) == []


@pytest.mark.parametrize("seed", range(25))
def test_random_sequences_never_oversell_and_keep_the_books_balanced(seed: int) -> None:
    rng = random.Random(seed)
    orders = [f"o{n}" for n in range(6)]
    stock = STOCKS.execute(
        CommandEnvelope(
            command_id="seed",
            command_type="AddStock",
            aggregate_id="A",
            payload={"quantity": rng.randint(1, 10)},
            correlation_id="A",
        ),
        STOCKS.initial_state("A"),
        NOW,
    )[1]
    added = stock.on_hand
    shipped = 0
    for step in range(60):
        order = rng.choice(orders)
        kind = rng.choice(["add", "reserve", "reserve", "reserve", "release", "commit"])
        payload: dict[str, object] = {"order_id": order}
        if kind == "add":
            payload = {"quantity": rng.randint(1, 4)}
        elif kind == "reserve":
            payload["quantity"] = rng.randint(1, 6)
        command = CommandEnvelope(
            command_id=f"{seed}-{step}",
            command_type={
                "add": "AddStock",
                "reserve": "ReserveStock",
                "release": "ReleaseStock",
                "commit": "CommitStock",
            }[kind],
            aggregate_id="A",
            payload=payload,
            correlation_id=order,
        )
        before = stock
        result, stock = STOCKS.execute(command, stock, NOW)

        if result.outcome == "rejected":
            assert kind == "reserve" and result.rejection is not None
            assert result.rejection.code == "insufficient_stock"
            assert int(str(payload["quantity"])) > before.available
            assert stock == before
        if kind == "add":
            added += int(str(payload["quantity"]))
        for event in result.events:
            if event.event_type == "StockCommitted":
                shipped += event.payload["quantity"]
        assert_balanced(stock)
        assert stock.available >= 0
        assert stock.on_hand == added - shipped
        assert stock.version == before.version + len(result.events) == result.version


def test_random_sequences_rebuild_from_their_events() -> None:
    rng = random.Random(7)
    state = STOCKS.initial_state("A")
    log = []
    commands: list[tuple[str, dict[str, object]]] = [("AddStock", {"quantity": 8})]
    for _ in range(40):
        order = f"o{rng.randint(0, 4)}"
        options: list[tuple[str, dict[str, object]]] = [
            ("ReserveStock", {"order_id": order, "quantity": rng.randint(1, 4)}),
            ("ReleaseStock", {"order_id": order}),
            ("CommitStock", {"order_id": order}),
            ("AddStock", {"quantity": rng.randint(1, 3)}),
        ]
        commands.append(rng.choice(options))
    for n, (command_type, payload) in enumerate(commands):
        command = CommandEnvelope(
            command_id=f"c{n}",
            command_type=command_type,
            aggregate_id="A",
            payload=payload,
            correlation_id="x",
        )
        result, state = STOCKS.execute(command, state, NOW)
        log += result.events

    assert [e.aggregate_version for e in log] == list(range(1, len(log) + 1))
    assert STOCKS.replay("A", log) == state
    assert_balanced(state)


# --- Reservation (one per order) ---------------------------------------------------------------

LINES = {"A": 2, "B": 1}
NOTED = OrderNoted(lines=LINES)
STARTED = ReservationStarted(lines=LINES)
A_RESERVED = LineReserved(sku="A", quantity=2)
B_RESERVED = LineReserved(sku="B", quantity=1)
B_REJECTED = LineRejected(sku="B", quantity=1, reason="insufficient_stock")
ALL_RESERVED = InventoryReserved(lines=LINES)


def given(*events: ReservationEvent) -> Reservation:
    state = RESERVATIONS.initial_state("o1")
    for event in events:
        state = RESERVATIONS.evolve(state, event, NOW)
    return state


def when(command: ReservationCommand, state: Reservation) -> list[ReservationEvent]:
    return RESERVATIONS.decide(command, state)


def test_a_placed_order_is_noted_and_its_payment_starts_the_reservation() -> None:
    assert when(NoteOrder(lines=LINES), given()) == [NOTED]
    assert when(StartReservation(), given(NOTED)) == [STARTED]
    assert given(NOTED, STARTED).status == "reserving"


def test_noting_or_starting_twice_decides_nothing() -> None:
    assert when(NoteOrder(lines=LINES), given(NOTED)) == []
    assert when(StartReservation(), given(NOTED, STARTED)) == []
    assert when(StartReservation(), given()) == []  # paid before noted: cannot happen, no-op


def test_the_first_answer_is_recorded_and_waits_for_the_others() -> None:
    assert when(RecordLine(sku="A", accepted=True), given(NOTED, STARTED)) == [A_RESERVED]


def test_when_every_line_is_reserved_the_order_is_reserved() -> None:
    assert when(RecordLine(sku="B", accepted=True), given(NOTED, STARTED, A_RESERVED)) == [
        B_RESERVED,
        ALL_RESERVED,
    ]
    assert given(NOTED, STARTED, A_RESERVED, B_RESERVED, ALL_RESERVED).status == "reserved"


def test_one_short_line_fails_the_order_and_releases_the_reserved_ones() -> None:
    decided = when(
        RecordLine(sku="B", accepted=False, reason="insufficient_stock"),
        given(NOTED, STARTED, A_RESERVED),
    )

    assert decided == [
        B_REJECTED,
        InventoryReservationFailed(short={"B": "insufficient_stock"}, released={"A": 2}),
    ]


def test_a_short_line_answered_first_still_waits_for_the_others() -> None:
    assert when(
        RecordLine(sku="B", accepted=False, reason="insufficient_stock"), given(NOTED, STARTED)
    ) == [B_REJECTED]
    assert when(RecordLine(sku="A", accepted=True), given(NOTED, STARTED, B_REJECTED)) == [
        A_RESERVED,
        InventoryReservationFailed(short={"B": "insufficient_stock"}, released={"A": 2}),
    ]


def test_all_lines_short_releases_nothing() -> None:
    state = given(NOTED, STARTED, LineRejected(sku="A", quantity=2, reason="not_found"))

    assert when(RecordLine(sku="B", accepted=False), state) == [
        LineRejected(sku="B", quantity=1, reason="rejected"),
        InventoryReservationFailed(short={"A": "not_found", "B": "rejected"}, released={}),
    ]


@pytest.mark.parametrize(
    ("history", "answer"),
    [
        pytest.param([NOTED, STARTED, A_RESERVED], RecordLine(sku="A", accepted=True), id="dup"),
        pytest.param(
            [NOTED, STARTED, A_RESERVED], RecordLine(sku="A", accepted=False), id="contradiction"
        ),
        pytest.param([NOTED, STARTED], RecordLine(sku="Z", accepted=True), id="unknown-sku"),
        pytest.param([NOTED], RecordLine(sku="A", accepted=True), id="not-started"),
        pytest.param(
            [NOTED, STARTED, A_RESERVED, B_RESERVED, ALL_RESERVED],
            RecordLine(sku="B", accepted=True),
            id="after-conclusion",
        ),
    ],
)
def test_duplicate_late_or_stray_answers_are_ignored(
    history: list[ReservationEvent], answer: RecordLine
) -> None:
    assert when(answer, given(*history)) == []


def test_a_cancel_while_reserving_waits_and_releases_when_the_last_answer_arrives() -> None:
    assert when(CancelReservation(), given(NOTED, STARTED, A_RESERVED)) == [ReservationCancelled()]

    cancelled = given(NOTED, STARTED, A_RESERVED, ReservationCancelled())
    assert when(RecordLine(sku="B", accepted=True), cancelled) == [
        B_RESERVED,
        ReservationReleased(released={"A": 2, "B": 1}),
    ]


def test_a_cancel_while_reserving_with_a_short_line_releases_only_what_was_reserved() -> None:
    cancelled = given(NOTED, STARTED, ReservationCancelled(), A_RESERVED)

    assert when(RecordLine(sku="B", accepted=False, reason="insufficient_stock"), cancelled) == [
        B_REJECTED,
        ReservationReleased(released={"A": 2}),
    ]


def test_a_cancel_before_payment_stops_the_reservation_from_starting() -> None:
    assert when(CancelReservation(), given(NOTED)) == [ReservationCancelled()]
    assert when(StartReservation(), given(NOTED, ReservationCancelled())) == []


def test_a_cancel_when_reserved_releases_every_line_at_once() -> None:
    reserved = given(NOTED, STARTED, A_RESERVED, B_RESERVED, ALL_RESERVED)

    assert when(CancelReservation(), reserved) == [
        ReservationCancelled(),
        ReservationReleased(released={"A": 2, "B": 1}),
    ]


@pytest.mark.parametrize(
    "history",
    [
        pytest.param(
            [NOTED, STARTED, A_RESERVED, B_RESERVED, ALL_RESERVED, ReservationCancelled()],
            id="cancelled-twice",
        ),
        pytest.param(
            [
                NOTED,
                STARTED,
                A_RESERVED,
                B_REJECTED,
                InventoryReservationFailed(short={}, released={}),
            ],
            id="failed",
        ),
        pytest.param(
            [
                NOTED,
                STARTED,
                A_RESERVED,
                B_RESERVED,
                ALL_RESERVED,
                ReservationCommitted(committed=LINES),
            ],
            id="committed",
        ),
        pytest.param(
            [
                NOTED,
                STARTED,
                ReservationCancelled(),
                A_RESERVED,
                B_RESERVED,
                ReservationReleased(released=LINES),
            ],
            id="released",
        ),
    ],
)
def test_a_cancel_with_nothing_left_to_release_decides_nothing(
    history: list[ReservationEvent],
) -> None:
    assert when(CancelReservation(), given(*history)) == []


def test_a_shipped_order_commits_what_was_reserved() -> None:
    reserved = given(NOTED, STARTED, A_RESERVED, B_RESERVED, ALL_RESERVED)

    assert when(CommitReservation(), reserved) == [ReservationCommitted(committed=LINES)]
    committed = given(
        NOTED, STARTED, A_RESERVED, B_RESERVED, ALL_RESERVED, *when(CommitReservation(), reserved)
    )
    assert committed.status == "committed"
    assert when(CommitReservation(), committed) == []


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([NOTED], id="noted"),
        pytest.param([NOTED, STARTED, A_RESERVED], id="reserving"),
        pytest.param(
            [
                NOTED,
                STARTED,
                A_RESERVED,
                B_REJECTED,
                InventoryReservationFailed(short={}, released={}),
            ],
            id="failed",
        ),
        pytest.param(
            [
                NOTED,
                STARTED,
                A_RESERVED,
                B_RESERVED,
                ALL_RESERVED,
                ReservationCancelled(),
                ReservationReleased(released=LINES),
            ],
            id="released",
        ),
    ],
)
def test_only_a_reserved_order_is_committed(history: list[ReservationEvent]) -> None:
    assert when(CommitReservation(), given(*history)) == []


def test_the_reservation_state_is_the_replay_of_its_events() -> None:
    steps: list[tuple[str, dict[str, object]]] = [
        ("NoteOrder", {"lines": LINES}),
        ("StartReservation", {}),
        ("RecordLine", {"sku": "B", "accepted": True}),
        ("RecordLine", {"sku": "B", "accepted": True}),  # duplicate answer
        ("RecordLine", {"sku": "A", "accepted": True}),
        ("CommitReservation", {}),
    ]
    state = given()
    log = []
    for n, (command_type, payload) in enumerate(steps):
        command = CommandEnvelope(
            command_id=f"c{n}",
            command_type=command_type,
            aggregate_id="o1",
            payload=payload,
            correlation_id="o1",
        )
        result, state = RESERVATIONS.execute(command, state, NOW)
        assert result.outcome == "accepted"
        log += result.events

    assert [e.event_type for e in log] == [
        "OrderNoted",
        "ReservationStarted",
        "LineReserved",
        "LineReserved",
        "InventoryReserved",
        "ReservationCommitted",
    ]
    assert RESERVATIONS.replay("o1", log) == state
    assert (state.status, state.reserved) == ("committed", {"A": 2, "B": 1})
