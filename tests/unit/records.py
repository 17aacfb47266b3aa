"""A Kafka record stand-in for unit tests of the folds (what `tables.read_models.Record` asks)."""

from __future__ import annotations

from dataclasses import dataclass


@dataclass
class Record:
    offset: int
    value: bytes | None
    key: bytes | None = None
    topic: str = "events"
    partition: int = 0
