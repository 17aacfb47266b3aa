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


def test_a_stopped_worker_exits_without_the_interpreters_teardown() -> None:
    # every service stopped (stores closed, producer flushed): the teardown of modules
    # and objects saves nothing and took 0.3-0.4 s of every restart
    worker = mock.Mock(spec=ShopWorker)
    with (
        mock.patch("mode.worker.Worker._shutdown_loop") as loop_closed,
        mock.patch("app.logs.logging.shutdown") as logs_flushed,
        mock.patch("app.logs.os._exit") as exit_now,
    ):
        ShopWorker._shutdown_loop(worker)
    loop_closed.assert_called_once()
    logs_flushed.assert_called_once()
    exit_now.assert_called_once_with(0)


def test_a_crashed_worker_raises_its_crash_as_mode_does() -> None:
    worker = mock.Mock(spec=ShopWorker)
    crash = RuntimeError("a service crashed")
    with (
        mock.patch("mode.worker.Worker._shutdown_loop", side_effect=crash),
        mock.patch("app.logs.os._exit") as exit_now,
    ):
        try:
            ShopWorker._shutdown_loop(worker)
        except RuntimeError as raised:
            assert raised is crash
        else:
            raise AssertionError("the crash was swallowed")
    exit_now.assert_not_called()


def test_a_worker_whose_start_failed_leaves_its_exit_status_to_the_error() -> None:
    worker = mock.Mock(spec=ShopWorker)
    with (
        mock.patch("mode.worker.Worker._shutdown_loop"),
        mock.patch("app.logs.os._exit") as exit_now,
    ):
        try:  # mode shuts the loop down in a `finally` as the start's error goes by
            raise SystemExit("Kafka authentication failed")
        except SystemExit:
            ShopWorker._shutdown_loop(worker)
    exit_now.assert_not_called()
