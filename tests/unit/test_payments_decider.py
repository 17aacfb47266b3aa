"""The Payment decider as a story: an order's total is captured, declined, or refunded.

Every command here comes from a fact elsewhere (an order placed or cancelled, the
account's answer), and facts are delivered at least once: a repeated fact decides nothing.
"""

from __future__ import annotations

from datetime import UTC, datetime
from decimal import Decimal

import pytest

from domain.payments import PAYMENTS
from models.envelope import CommandEnvelope
from models.payments import (
    CancellationNoted,
    Payment,
    PaymentCaptured,
    PaymentCommand,
    PaymentDeclined,
    PaymentEvent,
    PaymentRefunded,
    PaymentRequested,
    RecordCapture,
    RecordRefund,
    RefundFailed,
    RefundRequested,
    RequestPayment,
    RequestRefund,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
AMOUNT = Decimal("35.00")

REQUEST = RequestPayment(customer_id="ann", amount=AMOUNT)
CAPTURED_ANSWER = RecordCapture(accepted=True)
DECLINED_ANSWER = RecordCapture(accepted=False, reason="insufficient_funds")
CANCEL = RequestRefund(reason="customer_request")
REFUNDED_ANSWER = RecordRefund(accepted=True)

REQUESTED = PaymentRequested(customer_id="ann", amount=AMOUNT)
CAPTURED = PaymentCaptured(customer_id="ann", amount=AMOUNT)
DECLINED = PaymentDeclined(customer_id="ann", amount=AMOUNT, reason="insufficient_funds")
NOTED = CancellationNoted(reason="customer_request")
REFUND = RefundRequested(customer_id="ann", amount=AMOUNT, reason="customer_request")
REFUNDED = PaymentRefunded(customer_id="ann", amount=AMOUNT)


def given(*events: PaymentEvent) -> Payment:
    state = PAYMENTS.initial_state("o1")
    for event in events:
        state = PAYMENTS.evolve(state, event, NOW)
    return state


def when(command: PaymentCommand, state: Payment) -> list[PaymentEvent]:
    return PAYMENTS.decide(command, state)


# --- capture -------------------------------------------------------------------------------


def test_a_placed_order_requests_its_payment() -> None:
    assert when(REQUEST, given()) == [REQUESTED]
    state = given(REQUESTED)
    assert (state.status, state.customer_id, state.amount) == ("requested", "ann", AMOUNT)


def test_the_accounts_acceptance_captures_the_requested_amount() -> None:
    assert when(CAPTURED_ANSWER, given(REQUESTED)) == [CAPTURED]
    assert given(REQUESTED, CAPTURED).status == "captured"


def test_the_accounts_refusal_declines_the_payment_with_its_reason() -> None:
    assert when(DECLINED_ANSWER, given(REQUESTED)) == [DECLINED]
    assert given(REQUESTED, DECLINED).status == "declined"


def test_a_refusal_without_a_reason_is_declined_as_declined() -> None:
    (event,) = when(RecordCapture(accepted=False), given(REQUESTED))

    assert isinstance(event, PaymentDeclined)
    assert event.reason == "declined"


def test_an_answer_before_any_request_decides_nothing() -> None:
    assert when(CAPTURED_ANSWER, given()) == []
    assert when(REFUNDED_ANSWER, given()) == []


# --- cancellation and refund ----------------------------------------------------------------


def test_a_cancellation_after_capture_requests_a_refund() -> None:
    assert when(CANCEL, given(REQUESTED, CAPTURED)) == [REFUND]
    assert given(REQUESTED, CAPTURED, REFUND).status == "refund_requested"


def test_the_accounts_acceptance_of_the_refund_completes_it() -> None:
    assert when(REFUNDED_ANSWER, given(REQUESTED, CAPTURED, REFUND)) == [REFUNDED]
    assert given(REQUESTED, CAPTURED, REFUND, REFUNDED).status == "refunded"


def test_a_cancellation_while_capture_is_in_flight_is_noted_not_refunded() -> None:
    assert when(CANCEL, given(REQUESTED)) == [NOTED]
    state = given(REQUESTED, NOTED)
    assert (state.status, state.cancel_reason) == ("requested", "customer_request")


def test_a_capture_after_a_noted_cancellation_is_refunded_in_the_same_decision() -> None:
    assert when(CAPTURED_ANSWER, given(REQUESTED, NOTED)) == [CAPTURED, REFUND]


def test_a_decline_after_a_noted_cancellation_needs_no_refund() -> None:
    assert when(DECLINED_ANSWER, given(REQUESTED, NOTED)) == [DECLINED]


def test_capture_and_refund_in_one_decision_get_consecutive_versions_and_distinct_ids() -> None:
    command = CommandEnvelope(
        command_id="withdraw-1:answer",
        command_type="RecordCapture",
        aggregate_id="o1",
        payload={"accepted": True, "reason": None},
        correlation_id="o1",
        causation_id="withdraw-1",
    )

    result, state = PAYMENTS.execute(command, given(REQUESTED, NOTED), NOW)

    assert [e.event_type for e in result.events] == ["PaymentCaptured", "RefundRequested"]
    assert [e.aggregate_version for e in result.events] == [3, 4]
    assert len({e.event_id for e in result.events}) == 2
    assert {e.causation_id for e in result.events} == {"withdraw-1"}
    assert result.events[1].payload == {
        "customer_id": "ann",
        "amount": "35.00",
        "reason": "customer_request",
    }
    assert (state.status, state.version, result.version) == ("refund_requested", 4, 4)


@pytest.mark.parametrize(
    "history",
    [
        pytest.param([], id="never-requested"),
        pytest.param([REQUESTED, DECLINED], id="declined"),
        pytest.param([REQUESTED, CAPTURED, REFUND], id="refund-requested"),
        pytest.param([REQUESTED, CAPTURED, REFUND, REFUNDED], id="refunded"),
    ],
)
def test_a_cancellation_with_nothing_to_give_back_decides_nothing(
    history: list[PaymentEvent],
) -> None:
    assert when(CANCEL, given(*history)) == []


def test_a_refused_refund_is_recorded_as_owed_not_dropped() -> None:
    refused = RecordRefund(accepted=False, reason="balance_limit_exceeded")
    failed = RefundFailed(customer_id="ann", amount=AMOUNT, reason="balance_limit_exceeded")
    assert when(refused, given(REQUESTED, CAPTURED, REFUND)) == [failed]
    assert given(REQUESTED, CAPTURED, REFUND, failed).status == "refund_failed"
    assert when(refused, given(REQUESTED, CAPTURED, REFUND, failed)) == []


# --- idempotency: every repeated fact decides nothing ------------------------------------------


@pytest.mark.parametrize(
    ("history", "repeated"),
    [
        pytest.param([REQUESTED], REQUEST, id="request-again"),
        pytest.param([REQUESTED, CAPTURED], REQUEST, id="request-after-capture"),
        pytest.param([REQUESTED, CAPTURED], CAPTURED_ANSWER, id="capture-again"),
        pytest.param([REQUESTED, CAPTURED], DECLINED_ANSWER, id="decline-after-capture"),
        pytest.param([REQUESTED, DECLINED], DECLINED_ANSWER, id="decline-again"),
        pytest.param([REQUESTED, DECLINED], CAPTURED_ANSWER, id="capture-after-decline"),
        pytest.param([REQUESTED, NOTED], CANCEL, id="cancel-noted-again"),
        pytest.param([REQUESTED, NOTED, CAPTURED, REFUND], CAPTURED_ANSWER, id="capture-refunding"),
        pytest.param([REQUESTED, NOTED, CAPTURED, REFUND], CANCEL, id="cancel-refunding"),
        pytest.param([REQUESTED, CAPTURED, REFUND], CANCEL, id="cancel-again"),
        pytest.param([REQUESTED, CAPTURED, REFUND, REFUNDED], REFUNDED_ANSWER, id="refund-again"),
        pytest.param([REQUESTED, CAPTURED], REFUNDED_ANSWER, id="refund-answer-unasked"),
    ],
)
def test_a_repeated_or_late_fact_decides_nothing(
    history: list[PaymentEvent], repeated: PaymentCommand
) -> None:
    assert when(repeated, given(*history)) == []


def test_every_step_of_every_path_then_repeated_decides_nothing() -> None:
    paths: list[list[PaymentCommand]] = [
        [REQUEST, CAPTURED_ANSWER],
        [REQUEST, DECLINED_ANSWER],
        [REQUEST, CAPTURED_ANSWER, CANCEL, REFUNDED_ANSWER],
        [REQUEST, CANCEL, CAPTURED_ANSWER, REFUNDED_ANSWER],
        [REQUEST, CANCEL, DECLINED_ANSWER],
    ]
    for path in paths:
        state = given()
        for command in path:
            decided = when(command, state)
            assert decided, (path, command)
            for event in decided:
                state = PAYMENTS.evolve(state, event, NOW)
            assert when(command, state) == [], (path, command)
        for command in path:  # the whole story redelivered
            assert when(command, state) == [], (path, command)


def test_the_state_is_the_replay_of_the_recorded_events() -> None:
    state = given()
    log = []
    steps: list[tuple[str, dict[str, object]]] = [
        ("RequestPayment", {"customer_id": "ann", "amount": "35.00"})
    ]
    steps += [("RequestRefund", {"reason": "r"}), ("RecordCapture", {"accepted": True})]
    steps += [("RecordRefund", {"accepted": True})]
    for n, (command_type, payload) in enumerate(steps):
        command = CommandEnvelope(
            command_id=f"c{n}",
            command_type=command_type,
            aggregate_id="o1",
            payload=payload,
            correlation_id="o1",
        )
        result, state = PAYMENTS.execute(command, state, NOW)
        log += result.events

    assert [e.event_type for e in log] == [
        "PaymentRequested",
        "CancellationNoted",
        "PaymentCaptured",
        "RefundRequested",
        "PaymentRefunded",
    ]
    assert PAYMENTS.replay("o1", log) == state
    assert state.status == "refunded"
