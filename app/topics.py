"""Every topic of the system, created in one place with partitions and retention.

Event topics are the event store: kept forever (retention -1). Command topics
are transport: a week is plenty. All values are raw bytes; models/ decodes.
"""

from __future__ import annotations

from faust.types import TopicT

from app.main import app
from app.settings import settings
from models.contexts import ANSWER_TOPICS, COMMAND_TOPICS, EVENT_TOPICS
from models.rebuilds import PROGRESS_TOPIC as REBUILD_PROGRESS
from models.rebuilds import REQUESTS_TOPIC as REBUILD_REQUESTS

FOREVER = -1
WEEK_MS = 7 * 24 * 3600 * 1000


TOPICS: dict[str, TopicT] = {}
"""Every topic by its logical name (without the namespace prefix)."""
CATALOG: dict[str, tuple[int, int]] = {}
"""Every topic name -> (partitions, retention in ms); created at start by
app.provisioning."""


def _topic(name: str, retention_ms: int, partitions: int | None = None) -> TopicT:
    topic_name = settings.topic(name)
    count = partitions or settings.partitions
    topic = app.topic(
        topic_name,
        partitions=count,
        replicas=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
    )
    CATALOG[topic_name] = (count, retention_ms)
    TOPICS[name] = topic
    return topic


# the contexts' topics are named in models/contexts.py, with the contexts themselves

# the event store: one topic per context, keyed by aggregate id
for _name in EVENT_TOPICS:
    _topic(_name, FOREVER)

# commands, keyed by the aggregate they address
for _name in COMMAND_TOPICS:
    _topic(_name, WEEK_MS)

# answers to the saga's commands, keyed by order: the asking service reads them
for _name in ANSWER_TOPICS:
    _topic(_name, WEEK_MS)

# the command topics web views and agents send to directly
account_commands = TOPICS["accounts.commands"]
order_commands = TOPICS["orders.commands"]
stock_commands = TOPICS["inventory.commands"]

# what could not be processed, kept until re-driven; one partition, so one owner lists them
dead_letter_topic = _topic("deadletters", FOREVER, partitions=1)

# read-model rebuilds: requests co-partitioned with the events, progress on one partition
rebuild_requests = _topic(REBUILD_REQUESTS, WEEK_MS)
rebuild_progress = _topic(REBUILD_PROGRESS, WEEK_MS, partitions=1)

# analytics: metric facts from the event topics, repartitioned on purpose to ONE
# partition (key "all"), so one fold sees every fact and global figures are exact
analytics_facts = _topic("analytics.facts", WEEK_MS, partitions=1)


def reply_topic_name(instance_id: str) -> str:
    return settings.topic(f"{settings.app_id}.replies.{instance_id}")
