"""The Shipment decider as a story: one shipment per reserved order, cancelled with the order."""

from __future__ import annotations

from datetime import UTC, datetime

from domain.shipping import SHIPMENTS, shipment_id_for
from models.envelope import CommandEnvelope
from models.orders import Address
from models.shipping import (
    CancelShipment,
    CreateShipment,
    Shipment,
    ShipmentCancelled,
    ShipmentCommand,
    ShipmentCreated,
    ShipmentEvent,
)

NOW = datetime(2026, 5, 1, tzinfo=UTC)
ADDRESS = Address(name="Ann", street="1 Main St", city="Springfield", postal_code="1", country="US")
SHIPMENT_ID = shipment_id_for("o1")
CREATED = ShipmentCreated(shipment_id=SHIPMENT_ID, shipping_address=ADDRESS)


def given(*events: ShipmentEvent, order_id: str = "o1") -> Shipment:
    state = SHIPMENTS.initial_state(order_id)
    for event in events:
        state = SHIPMENTS.evolve(state, event, NOW)
    return state


def when(command: ShipmentCommand, state: Shipment) -> list[ShipmentEvent]:
    return SHIPMENTS.decide(command, state)


def test_a_reserved_order_gets_a_shipment_to_its_address() -> None:
    assert when(CreateShipment(shipping_address=ADDRESS), given()) == [CREATED]
    state = given(CREATED)
    assert (state.status, state.shipment_id, state.version) == ("created", SHIPMENT_ID, 1)


def test_the_shipment_id_is_derived_from_the_order_alone() -> None:
    assert shipment_id_for("o1") == shipment_id_for("o1") == SHIPMENT_ID
    assert shipment_id_for("o2") != SHIPMENT_ID
    assert SHIPMENT_ID.startswith("shp-") and len(SHIPMENT_ID) == 16
    # a decision re-run (after a crash, in another worker) names the same shipment
    (again,) = when(CreateShipment(shipping_address=None), given())
    assert isinstance(again, ShipmentCreated) and again.shipment_id == SHIPMENT_ID


def test_a_shipment_is_created_once() -> None:
    assert when(CreateShipment(shipping_address=ADDRESS), given(CREATED)) == []


def test_a_cancelled_order_cancels_its_created_shipment() -> None:
    assert when(CancelShipment(), given(CREATED)) == [ShipmentCancelled(shipment_id=SHIPMENT_ID)]
    assert given(CREATED, ShipmentCancelled(shipment_id=SHIPMENT_ID)).status == "cancelled"


def test_there_is_nothing_to_cancel_before_creation_or_after_cancellation() -> None:
    cancelled = given(CREATED, ShipmentCancelled(shipment_id=SHIPMENT_ID))

    assert when(CancelShipment(), given()) == []
    assert when(CancelShipment(), cancelled) == []


def test_a_cancelled_shipment_is_not_created_again() -> None:
    cancelled = given(CREATED, ShipmentCancelled(shipment_id=SHIPMENT_ID))

    assert when(CreateShipment(shipping_address=ADDRESS), cancelled) == []


def test_executing_create_twice_with_different_commands_yields_one_shipment() -> None:
    state = SHIPMENTS.initial_state("o1")
    log = []
    for command_id in ("first", "second"):
        command = CommandEnvelope(
            command_id=command_id,
            command_type="CreateShipment",
            aggregate_id="o1",
            payload={"shipping_address": ADDRESS.model_dump()},
            correlation_id="o1",
        )
        result, state = SHIPMENTS.execute(command, state, NOW)
        assert result.outcome == "accepted"
        log += result.events

    assert [e.event_type for e in log] == ["ShipmentCreated"]
    assert log[0].payload["shipment_id"] == SHIPMENT_ID
    assert SHIPMENTS.replay("o1", log) == state
