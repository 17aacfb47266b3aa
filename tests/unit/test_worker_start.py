"""A worker's start and stop wait for nothing they do not need: no second of grace for
tables declared late, no empty fetch of 1.5 s in front of the recovery's offset lookups,
no database opened for the owners table, no second before the loop closes (app/main.py,
app/faust_clients.py, app/logs.py)."""

from __future__ import annotations

import asyncio
import time
from unittest import mock

from app.faust_clients import FETCH_MAX_WAIT_MS, ShopConsumerThread
from app.logs import SENTINEL_SECONDS, ShopWorker
from app.main import ShopTableManager, app
from tables.owners import owners


def test_the_owners_table_is_kept_in_memory() -> None:
    assert str(owners._store) == "memory:"
    assert app.tables.__class__ is ShopTableManager


async def test_fausts_consumer_holds_an_empty_fetch_100_ms() -> None:
    thread = app.consumer._thread  # type: ignore[attr-defined]
    assert isinstance(thread, ShopConsumerThread)
    consumer = thread._create_worker_consumer(app.transport)
    assert consumer._fetch_max_wait_ms == FETCH_MAX_WAIT_MS == 100


async def test_the_table_manager_starts_its_recovery_at_once() -> None:
    manager = ShopTableManager(app)
    recovery = mock.Mock(start=mock.AsyncMock())
    with (
        mock.patch.object(manager, "_update_channels", mock.AsyncMock()) as update,
        mock.patch.object(ShopTableManager, "recovery", recovery),
    ):
        await asyncio.wait_for(manager.on_start(), timeout=0.5)  # faust's waits 1 s first
    update.assert_awaited_once()
    recovery.start.assert_awaited_once()


async def test_the_worker_closes_its_loop_a_tenth_of_a_second_after_its_services() -> None:
    # mode's worker sleeps a whole second there, and a restart waits for the exit
    started = time.monotonic()  # (a worker built here would name the process's log lines)
    await asyncio.wait_for(ShopWorker._sentinel_task(mock.Mock()), timeout=0.5)
    assert time.monotonic() - started < 0.5
    assert SENTINEL_SECONDS == 0.1
