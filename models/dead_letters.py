"""A message that could not be processed, kept with everything needed to re-drive it,
and the records that close it: a re-drive, or an operator's resolution."""

from __future__ import annotations

from typing import Literal

from pydantic import AwareDatetime, BaseModel, Field

LetterStatus = Literal["dead", "redriven", "resolved", "discarded"]
"""`dead` until one of the others; `redriven`: its bytes were sent back to their topic;
`resolved` (the cause was dealt with another way) and `discarded` (never to be retried):
an operator's word, with a reason. Only a dead letter is retried."""
Closing = Literal["resolved", "discarded"]

MAX_REASON = 300


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
    status: LetterStatus = "dead"
    redriven_at: AwareDatetime | None = None
    closed_at: AwareDatetime | None = None
    """When it was resolved or discarded."""
    close_reason: str | None = None
    """Why it was resolved or discarded, as the operator said."""
    sequence: int | None = None
    """Its offset on the dead-letter topic, set by the fold (tables/dead_letters.py): a
    letter dead-lettered later has a larger one, so a bulk retry can be bounded to the
    letters a dry run counted (those below its `through`)."""


class Redrive(BaseModel):
    """A record, on the dead-letter topic, that a dead letter's bytes were sent back to
    their source topic (appended after the send is acknowledged)."""

    redrive: str
    """The dead letter's id."""


class Resolution(BaseModel):
    """A record, on the dead-letter topic, that an operator resolved or discarded a dead
    letter: it is not retried any more, and the reason is kept on it."""

    resolve: str
    """The dead letter's id."""
    state: Closing
    reason: str = Field(min_length=1, max_length=MAX_REASON)
