"""Every topic of the system, declared in one place with partitions and retention.

Event topics are the event store: kept forever (retention -1). Command topics
are transport: a week is plenty. All values are raw bytes; models/ decodes.
"""

from __future__ import annotations

from faust.types import TopicT

from app.main import app
from app.settings import settings

FOREVER = -1
WEEK_MS = 7 * 24 * 3600 * 1000


def _topic(name: str, retention_ms: int) -> TopicT:
    return app.topic(
        settings.topic(name),
        partitions=settings.partitions,
        replicas=settings.replication_factor,
        key_serializer="raw",
        value_serializer="raw",
        internal=True,  # faust creates it with these settings if missing
        config={"retention.ms": str(retention_ms), "cleanup.policy": "delete"},
    )


account_commands = _topic("accounts.commands", WEEK_MS)
account_events = _topic("accounts.events", FOREVER)


def reply_topic_name(instance_id: str) -> str:
    return settings.topic(f"{settings.app_id}.replies.{instance_id}")
