"""A message that could not be processed, kept with everything needed to re-drive it."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel


class DeadLetter(BaseModel):
    id: str
    """`topic:partition:offset:agent`: the message and who failed on it; stable."""
    agent: str
    source_topic: str
    partition: int
    offset: int
    key: str | None
    """The original key, base64."""
    value: str | None
    """The original bytes, base64."""
    error_type: str
    error: str
    traceback: str
    attempts: int
    failed_at: AwareDatetime
    status: Literal["dead", "redriven"] = "dead"
    redriven_at: AwareDatetime | None = None


class Redrive(BaseModel):
    """A request, on the dead-letter topic, to send a dead letter back to its source."""

    redrive: str
    """The dead letter's id."""
