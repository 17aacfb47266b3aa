"""Retries and dead letters: one poison message never stops a partition.

What happens when a reader (agents/engine.py) fails on a record depends on whose
fault it is:

- the record's: it cannot be decoded or validated (`PERMANENT`), or its handling
  still fails after `HANDLER_MAX_ATTEMPTS` with an error that is not a system
  error. It goes to the dead-letter topic with its original key and bytes, the
  error, the source topic/partition/offset and the attempts (`bury`), and the
  partition moves on. A dead letter is re-driven by sending its bytes back
  (agents/redrives.py).
- the system's (`SYSTEM`: a broker, topic, timeout or store error): nothing is
  diverted. The reader stores nothing for the batch, goes back to its stored
  position and tries again with backoff until the error clears, while
  `/ops/health` says degraded (`app.stalls`); if the partition moves to another
  worker meanwhile, the new owner reads it. Every reader's effect is idempotent,
  so a repeat is always safe.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, TypeVar

from aiokafka.errors import KafkaError
from faust.exceptions import PartitionsMismatch, ProducerSendError
from pydantic import ValidationError

from app import faults
from app.metrics import DEAD_LETTERS
from app.settings import settings
from app.stalls import stalls
from app.topics import dead_letter_topic
from models.dead_letters import DeadLetter
from models.envelope import utc_now
from models.upcasting import UnknownSchemaVersion
from tables.read_models import GapInLog, Record

log = logging.getLogger(__name__)

T = TypeVar("T")

MAX_ATTEMPTS = settings.handler_max_attempts
BACKOFF_SECONDS = settings.handler_backoff_seconds
MAX_BACKOFF_SECONDS = 5.0
PERMANENT = (ValidationError, UnknownSchemaVersion, UnicodeDecodeError, GapInLog)
"""Errors no retry can fix: the message itself is bad (or the log lacks what it follows)."""
SYSTEM = (KafkaError, PartitionsMismatch, ProducerSendError, OSError)
"""Errors of the system around the message (OSError covers timeouts, connections, disks):
held and retried until they clear, never dead-lettered."""


async def bury(
    agent: str,
    message: Record,
    error: BaseException,
    attempts: int,
    hold: Callable[[], Awaitable[bool]],
) -> bool:
    """Send `message` to the dead-letter topic with its cause; False if given up.

    A system error while sending is held (`hold()` waits; False: the partition
    moved, give up and leave the message to its new owner), never dropped."""
    letter = DeadLetter(
        id=f"{message.topic}:{message.partition}:{message.offset}:{agent}",
        agent=agent,
        source_topic=message.topic,
        partition=message.partition,
        offset=message.offset,
        key=_b64(message.key),
        value=_b64(message.value),
        error_type=type(error).__name__,
        error=str(error)[:2000],
        traceback="".join(traceback.format_exception(error))[-8000:],
        attempts=attempts,
        failed_at=utc_now(),
    )
    log.error(
        "%s: dead-lettered %s after %d attempt(s): %s",
        *(agent, letter.id, attempts, error),
        extra=_about(agent, message),
    )
    value = letter.model_dump_json().encode()
    while True:
        try:
            await (await dead_letter_topic.send(key=letter.id, value=value))
            break
        except SYSTEM as send_error:
            stalls.failed(agent, send_error)
            if not await hold():
                return False
    stalls.cleared(agent)
    DEAD_LETTERS.labels(agent=agent).inc()
    return True


def _about(agent: str, record: Record) -> dict[str, Any]:
    """A log line's fields naming the record it is about."""
    return {
        "agent": agent,
        "topic": record.topic,
        "partition": record.partition,
        "offset": record.offset,
    }


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()


class GaveUp(ConnectionError):
    """A dead letter could not be sent before the partition moved (a system error: the
    batch stores nothing, and the partition's next owner reads the record again)."""


async def attempted(
    agent: str, record: Record, work: Callable[[], T], hold: Callable[[], Awaitable[bool]]
) -> tuple[bool, T | None]:
    """(True, `work()`), retried up to MAX_ATTEMPTS on an error of its own; (False, None)
    once the record is dead-lettered (at once for a PERMANENT error). A SYSTEM error is
    raised: the caller's batch is read again from its stored position."""
    attempt = 0
    while True:
        try:
            faults.handler_attempt(agent, attempt)  # SHOP_FAIL_FIRST: a failure on purpose
            return True, work()
        except SYSTEM:
            raise
        except Exception as error:
            attempt += 1
            if not isinstance(error, PERMANENT) and attempt < MAX_ATTEMPTS:
                log.warning(
                    "%s: attempt %d failed (%r); retrying",
                    *(agent, attempt, error),
                    extra=_about(agent, record),
                )
                await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))
                continue
            if not await bury(agent, record, error, attempt, hold):
                raise GaveUp(f"{agent}: {record.topic}[{record.partition}] moved") from error
            return False, None
