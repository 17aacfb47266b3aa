"""Every topic the app uses exists, with its partitions, before the first consumer joins.

faust creates a table's changelog when the table starts, i.e. around the first
rebalance: a worker whose consumer metadata does not have it yet leaves it
unassigned ("Ignoring missing topic") or sees it with 0 partitions and raises
PartitionsMismatch on every message. And a consumer subscribing to a missing
topic makes a broker with `auto.create.topics.enable` create it with the
broker's default partition count. So each worker, before its consumer starts,
creates whatever is missing (event, command, answer, repartition topics, every
table changelog, faust's leader topic; each with SHOP_REPLICATION_FACTOR replicas and
SHOP_MIN_INSYNC_REPLICAS as its min.insync.replicas), waits until the broker reports every
one with its partition count, and refuses to start on a mismatch.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from typing import Any

from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.errors import for_code
from faust.types import TopicT
from mode.utils.times import want_seconds

from app.kafka_clients import client_options
from app.main import app
from app.settings import settings
from app.topics import CATALOG

log = logging.getLogger(__name__)

TOPIC_ALREADY_EXISTS = 36
UNKNOWN_TOPIC = 3
DECLARE_TIMEOUT_SECONDS = 60.0


class TopicMismatch(SystemExit):
    """A topic exists with other partitions than the app needs: nothing can fix it at run time."""


@dataclass(frozen=True)
class TopicSpec:
    partitions: int
    config: Mapping[str, str] = field(default_factory=dict)


def _cleanup(retention: int) -> dict[str, str]:
    return {"retention.ms": str(retention), "cleanup.policy": "delete"}


def wanted_topics() -> dict[str, TopicSpec]:
    """Every topic this app reads or writes, with its partitions and settings."""
    wanted = {
        name: TopicSpec(partitions, _cleanup(retention))
        for name, (partitions, retention) in CATALOG.items()
    }
    for table in app.tables.values():
        topic = table.changelog_topic
        partitions = table.partitions or settings.partitions
        wanted[topic.get_topic_name()] = TopicSpec(partitions, _changelog_config(topic))
    wanted[f"{app.conf.id}-__assignor-__leader"] = TopicSpec(1)
    return wanted


def _changelog_config(topic: TopicT) -> dict[str, str]:
    # the same settings faust's own declare() would give the changelog
    flags = sorted(f for f, on in (("compact", topic.compacting), ("delete", topic.deleting)) if on)
    config = {"cleanup.policy": ",".join(flags)} if flags else {}
    if topic.retention:
        config["retention.ms"] = str(int(want_seconds(topic.retention) * 1000))
    return config


async def ensure_topics(
    wanted: Mapping[str, TopicSpec], within: float = DECLARE_TIMEOUT_SECONDS
) -> None:
    """Create what is missing and wait until the broker reports all of `wanted` as asked.

    Safe when several workers run it at once: a topic another worker created first
    counts as created. Raises TopicMismatch for a topic with other partitions.
    """
    admin = AIOKafkaAdminClient(**client_options())
    await admin.start()
    try:
        deadline = time.monotonic() + within
        created = False
        while True:
            have = await _partition_counts(admin)
            _refuse_mismatches(wanted, have)
            missing = [name for name in wanted if have.get(name, 0) == 0]
            if not missing:
                return
            if time.monotonic() > deadline:
                raise TimeoutError(f"topics still missing after {within:.0f}s: {missing[:10]}")
            if not created:
                await _create(admin, {name: wanted[name] for name in missing})
                created = True
            await asyncio.sleep(0.1)
    finally:
        await admin.close()


async def _partition_counts(admin: AIOKafkaAdminClient) -> dict[str, int]:
    # describe ALL topics: asking for named ones lets a broker with auto-create on
    # create them with its default partition count
    described: Iterable[dict[str, Any]] = await admin.describe_topics()
    return {
        topic["topic"]: len(topic["partitions"]) for topic in described if topic["error_code"] == 0
    }


def _refuse_mismatches(wanted: Mapping[str, TopicSpec], have: Mapping[str, int]) -> None:
    wrong = [
        f"{name}: has {have[name]} partitions, needs {spec.partitions}"
        for name, spec in wanted.items()
        if have.get(name, 0) not in (0, spec.partitions)
    ]
    if wrong:
        raise TopicMismatch(
            "refusing to start: topics exist with the wrong partition count (created by "
            "hand, by broker auto-create, or by another SHOP_PARTITIONS); delete them or "
            "use another SHOP_TOPIC_PREFIX/SHOP_APP_ID:\n  " + "\n  ".join(wrong)
        )


def _with_min_isr(config: Mapping[str, str]) -> dict[str, str]:
    """Every topic created gets min.insync.replicas (SHOP_MIN_INSYNC_REPLICAS), so that
    acks=all means that many copies, whatever the broker's default; a spec may say otherwise."""
    return {"min.insync.replicas": str(settings.min_insync_replicas), **config}


async def _create(admin: AIOKafkaAdminClient, specs: Mapping[str, TopicSpec]) -> None:
    response = await admin.create_topics(
        [
            NewTopic(
                name,
                num_partitions=spec.partitions,
                replication_factor=settings.replication_factor,
                topic_configs=_with_min_isr(spec.config),
            )
            for name, spec in specs.items()
        ]
    )
    for name, code, *_ in response.topic_errors:
        if code not in (0, TOPIC_ALREADY_EXISTS):  # already there: another worker was first
            raise for_code(code)(f"could not create topic {name}")
    log.info("created %d topic(s)", len(specs))


async def declare_topics() -> None:
    await ensure_topics(wanted_topics())


app.declarations.append(declare_topics)
