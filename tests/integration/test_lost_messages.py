"""A message faust never hands to the services is still handled: read back from the log.

faust 0.15.3 can count a fetched message as read and never hand it to its agents
(agents/skipped_offsets.py). The fault point `handover:drop@1` does exactly that
to the first message of an event topic, here an order's `OrderPlaced`: the
services that react to it (payments, reservations, shipping) must still see it,
or the order stays `pending` for good.
"""

from __future__ import annotations

from collections.abc import Iterator

import httpx
import pytest
from aiokafka.partitioner import murmur2

from tests.integration.test_failures import eventually, open_the_shop, shipped
from tests.system import System, Worker

pytestmark = pytest.mark.integration

PARTITIONS = 8


def same_partition(prefix: str, count: int) -> list[str]:
    """`count` order ids that the partitioner puts in one partition (the first's)."""
    ids = [f"{prefix}-{n}" for n in range(200)]

    def partition(key: str) -> int:
        return (murmur2(key.encode()) & 0x7FFFFFFF) % PARTITIONS

    return [key for key in ids if partition(key) == partition(ids[0])][:count]


def order(api: httpx.Client, order_id: str, customer: str, sku: str) -> None:
    body = {
        "order_id": order_id,
        "customer_id": customer,
        "lines": [{"sku": sku, "quantity": 1, "unit_price": "2.00"}],
    }
    placed = eventually(lambda: (r := api.post("/orders", json=body)).status_code != 503 and r)
    assert placed.status_code == 202, placed.text


@pytest.fixture
def system(kafka_bootstrap: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[System]:
    shop = System(tmp_path_factory.mktemp("lost"), partitions=PARTITIONS)
    shop.env["SHOP_FAULT"] = "handover:drop@1"
    try:
        yield shop
    finally:
        shop.stop()


def opened(system: System, customer: str, sku: str) -> tuple[Worker, httpx.Client]:
    worker = system.worker().wait_ready()
    api = httpx.Client(base_url=worker.url, timeout=30.0)
    open_the_shop(api, customer, sku, "50.00")
    return worker, api


def test_a_lost_message_with_nothing_after_it_is_read_back_once_its_agents_are_quiet(
    system: System,
) -> None:
    worker, api = opened(system, "quiet-buyer", "QUIET")
    order(api, "quiet-1", "quiet-buyer", "QUIET")  # its OrderPlaced is dropped
    assert shipped(api, "quiet-1", timeout=30.0)["total"] == "2.00"
    log = worker.log_path.read_text(errors="replace")
    assert "fault handover: dropping this message" in log
    assert "quiet at offset 0 to 1" in log


def test_a_partition_never_committed_is_checked_from_the_start_of_its_log(
    system: System,
) -> None:
    # the quiet check is off: only the next message of the partition can reveal the loss
    system.env["SERVICE_QUIET_CHECK_SECONDS"] = "3600"
    worker, api = opened(system, "first-buyer", "FIRST")
    first, second = same_partition("first", 2)
    order(api, first, "first-buyer", "FIRST")  # dropped, at offset 0: nothing committed yet
    order(api, second, "first-buyer", "FIRST")
    for order_id in (first, second):
        assert shipped(api, order_id, timeout=30.0)["status"] == "shipped"
    log = worker.log_path.read_text(errors="replace")
    assert "fault handover: dropping this message" in log
    assert "jumped from offset 0 to 1" in log
