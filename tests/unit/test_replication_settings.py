"""Replication: min.insync.replicas follows the replication factor, is checked at start,
and goes with every topic the app creates."""

from __future__ import annotations

from typing import Any

import pytest

from app import provisioning
from app.provisioning import TopicSpec, ensure_topics
from app.settings import Settings


@pytest.fixture(autouse=True)
def _no_replication_env(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv("SHOP_REPLICATION_FACTOR", raising=False)
    monkeypatch.delenv("SHOP_MIN_INSYNC_REPLICAS", raising=False)


@pytest.mark.parametrize(("replicas", "min_isr"), [(None, 1), ("1", 1), ("2", 1), ("3", 2)])
def test_min_insync_replicas_defaults_to_one_less_than_the_replicas(
    monkeypatch: pytest.MonkeyPatch, replicas: str | None, min_isr: int
) -> None:
    if replicas is not None:
        monkeypatch.setenv("SHOP_REPLICATION_FACTOR", replicas)
    assert Settings().min_insync_replicas == min_isr


def test_min_insync_replicas_can_be_set(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("SHOP_REPLICATION_FACTOR", "3")
    monkeypatch.setenv("SHOP_MIN_INSYNC_REPLICAS", "3")
    assert Settings().min_insync_replicas == 3


@pytest.mark.parametrize(
    ("env", "message"),
    [
        ({"SHOP_MIN_INSYNC_REPLICAS": "2"}, "SHOP_MIN_INSYNC_REPLICAS must be between 1 and"),
        (
            {"SHOP_MIN_INSYNC_REPLICAS": "0"},
            "SHOP_MIN_INSYNC_REPLICAS must be an integer of at least 1",
        ),
        (
            {"SHOP_REPLICATION_FACTOR": "3", "SHOP_MIN_INSYNC_REPLICAS": "4"},
            r"SHOP_REPLICATION_FACTOR \(3\), got 4",
        ),
        (
            {"SHOP_REPLICATION_FACTOR": "0"},
            "SHOP_REPLICATION_FACTOR must be an integer of at least 1",
        ),
        ({"SHOP_MIN_INSYNC_REPLICAS": "two"}, "SHOP_MIN_INSYNC_REPLICAS must be an integer"),
    ],
)
def test_impossible_replication_is_refused_naming_the_variable(
    monkeypatch: pytest.MonkeyPatch, env: dict[str, str], message: str
) -> None:
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    with pytest.raises(SystemExit, match=message):
        Settings()


class FakeAdmin:
    """The admin client as ensure_topics uses it: what it is asked to create, then exists."""

    created: list[Any] = []

    def __init__(self, **options: Any) -> None:
        pass

    async def start(self) -> None:
        pass

    async def close(self) -> None:
        pass

    async def describe_topics(self) -> list[dict[str, Any]]:
        return [
            {"topic": t.name, "error_code": 0, "partitions": [{}] * t.num_partitions}
            for t in FakeAdmin.created
        ]

    async def create_topics(self, topics: list[Any]) -> Any:
        FakeAdmin.created.extend(topics)

        class Response:
            topic_errors = [(t.name, 0, None) for t in topics]

        return Response()


async def test_every_topic_created_carries_the_min_insync_replicas(
    monkeypatch: pytest.MonkeyPatch,
) -> None:
    monkeypatch.setattr(provisioning, "AIOKafkaAdminClient", FakeAdmin)
    monkeypatch.setattr(
        provisioning, "settings", Settings(replication_factor=3, min_insync_replicas=2)
    )
    FakeAdmin.created = []
    await ensure_topics(
        {
            "events": TopicSpec(8, {"retention.ms": "-1", "cleanup.policy": "delete"}),
            "leader": TopicSpec(1),
        }
    )
    made = {t.name: t for t in FakeAdmin.created}
    assert set(made) == {"events", "leader"}
    assert {t.replication_factor for t in made.values()} == {3}
    assert made["events"].topic_configs == {
        "min.insync.replicas": "2",
        "retention.ms": "-1",
        "cleanup.policy": "delete",
    }
    assert made["leader"].topic_configs == {"min.insync.replicas": "2"}


def test_the_app_asks_for_acks_all() -> None:
    from app.main import app

    assert app.conf.producer_acks == -1
