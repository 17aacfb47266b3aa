"""`shop rebuild <read model>`: rebuild a read model from the event log, with progress.

    shop rebuild accounts [--timeout 600]

Sends one request per partition to the workers (agents/rebuilds.py), then
follows their progress reports until every partition has switched, and prints
the final counts. Exit 0 when all switched, 1 if a partition failed or timed out.
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
import uuid
from typing import Any

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition

from app.kafka_clients import client_options
from app.load import positive_float
from app.settings import settings
from models.rebuilds import (
    ONE_PARTITION,
    PROGRESS_TOPIC,
    REBUILDABLE,
    REQUESTS_TOPIC,
    RebuildProgress,
    RebuildRequest,
)

BAR_WIDTH = 30


def bar(reports: dict[int, RebuildProgress], partitions: int) -> str:
    read = sum(r.read + r.skipped for r in reports.values())
    total = sum(r.total for r in reports.values())
    done = sum(1 for r in reports.values() if r.phase != "replaying")
    share = read / total if total else 0.0
    filled = int(BAR_WIDTH * min(share, 1.0))
    return (
        f"[{'#' * filled}{'.' * (BAR_WIDTH - filled)}] {share:6.1%} "
        f"{read}/{total} events, {done}/{partitions} partitions switched"
    )


RESEND_AFTER = 15.0
"""Seconds without a report after which a partition's request is sent again: a rebalance
cancels a running rebuild, and a request that is running already is ignored."""


async def rebuild(
    read_model: str, wait_seconds: float, out: Any = sys.stderr
) -> tuple[dict[int, RebuildProgress], int, float]:
    """Request the rebuild of every partition and collect each one's last report; also
    how many partitions were requested and the seconds from the requests to the last
    report."""
    rebuild_id = uuid.uuid4().hex[:12]
    requests_topic = settings.topic(REQUESTS_TOPIC)
    progress = TopicPartition(settings.topic(PROGRESS_TOPIC), 0)
    consumer = AIOKafkaConsumer(**client_options(), enable_auto_commit=False)
    producer = AIOKafkaProducer(**client_options(), acks="all")
    await consumer.start()
    await producer.start()
    try:
        consumer.assign([progress])
        await consumer.seek_to_end(progress)
        await consumer.position(progress)  # resolve it now: reports sent from here on count
        partitions = sorted(await producer.partitions_for(requests_topic))
        if read_model in ONE_PARTITION:
            partitions = [0]
        request = RebuildRequest(rebuild_id=rebuild_id, read_model=read_model).model_dump_json()
        heard: dict[int, float] = {}
        """Partition -> when its request was sent or it last reported."""
        for partition in partitions:
            await producer.send_and_wait(requests_topic, request.encode(), partition=partition)
            heard[partition] = time.monotonic()
        print(f"rebuild {rebuild_id} of {read_model}: {len(partitions)} partitions", file=out)
        requested = time.monotonic()
        reports: dict[int, RebuildProgress] = {}
        deadline = time.monotonic() + wait_seconds
        tty = out.isatty()
        last_line = 0.0
        while time.monotonic() < deadline:
            batches = await consumer.getmany(progress, timeout_ms=500)
            for record in batches.get(progress, []):
                report = RebuildProgress.model_validate_json(record.value or b"{}")
                if report.rebuild_id == rebuild_id:
                    reports[report.partition] = report
                    heard[report.partition] = time.monotonic()
            for partition in partitions:  # a rebalance cancelled it: ask its new owner
                done = partition in reports and reports[partition].phase != "replaying"
                if not done and time.monotonic() - heard[partition] > RESEND_AFTER:
                    await producer.send_and_wait(
                        requests_topic, request.encode(), partition=partition
                    )
                    heard[partition] = time.monotonic()
            if tty or time.monotonic() - last_line > 2:
                last_line = time.monotonic()
                print(
                    ("\r" if tty else "") + bar(reports, len(partitions)),
                    end="" if tty else "\n",
                    file=out,
                )
            if len(reports) == len(partitions) and all(
                r.phase != "replaying" for r in reports.values()
            ):
                break
        if tty:
            print(file=out)
        return reports, len(partitions), time.monotonic() - requested
    finally:
        await producer.stop()
        await consumer.stop()


def run_rebuild(args: argparse.Namespace) -> int:
    reports, requested, seconds = asyncio.run(rebuild(args.read_model, args.timeout))
    switched = [r for r in reports.values() if r.phase == "switched"]
    failed = [r for r in reports.values() if r.phase == "failed"]
    print(
        f"{args.read_model}: {sum(r.read for r in switched)} events replayed, "
        f"{sum(r.written for r in switched)} rows written, "
        f"{sum(r.deleted for r in switched)} deleted, "
        f"{sum(r.unchanged for r in switched)} unchanged, "
        f"{sum(r.skipped for r in switched)} events skipped; "
        f"{len(switched)} partitions switched in {seconds:.1f} s"
    )
    for report in sorted(failed, key=lambda r: r.partition):
        print(f"partition {report.partition} failed: {report.error}", file=sys.stderr)
    # the partitions actually requested (the topic's), not $SHOP_PARTITIONS: a CLI run
    # with another value than the workers' would count the wrong number as missing
    if len(switched) != requested:
        missing = requested - len(switched) - len(failed)
        if missing:
            print(f"{missing} partition(s) did not finish in {args.timeout:.0f}s", file=sys.stderr)
        return 1
    return 0


READ_MODELS_HELP = (
    "accounts: each account's state and history; analytics: the windowed figures "
    "(from analytics.facts, one partition); orders: orders by id; stock: each SKU's "
    "stock; timeline: each order's saga steps"
)

DESCRIPTION = f"""\
Rebuilds a read model from its event topic while the workers keep serving.
Sends one request per partition to {REQUESTS_TOPIC} (analytics: one request);
the worker that owns that partition refolds it from offset 0 into a fresh
store and swaps it in. A partition with no report for {RESEND_AFTER:g} s gets its request
again (a rebalance cancels a rebuild under way).

Talks to Kafka directly ($KAFKA_BOOTSTRAP_SERVERS, $SHOP_TOPIC_PREFIX and the
other KAFKA_* settings), not to a worker's HTTP API; workers must be running.

Prints a progress bar on stderr, then the counts on stdout (events replayed,
rows written, deleted, unchanged, events skipped, partitions switched) and each
failed partition on stderr.
Exit status: 0 when every partition switched; 1 when any failed or did not
finish within --timeout (run it again).
"""


def add_rebuild_parser(subparsers: Any) -> None:
    parser = subparsers.add_parser(
        "rebuild",
        help="rebuild a read model from its event topic, workers serving on (over Kafka)",
        description=DESCRIPTION,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("read_model", choices=REBUILDABLE, help=READ_MODELS_HELP)
    parser.add_argument(
        "--timeout",
        type=positive_float,
        default=600.0,
        metavar="SECONDS",
        help="seconds to wait for every partition to switch; the rebuilds go on after it "
        "(default: %(default)s)",
    )
    parser.set_defaults(run=run_rebuild)
