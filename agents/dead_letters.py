"""Retries, dead letters and re-drives: one poison message never stops a partition.

Every agent runs its handler through `guarded`. What happens on an error depends
on whose fault it is:

- messages faust skipped before this one (agents/skipped_offsets.py) are read
  back from Kafka and handled first;
- the message's: it cannot be decoded or validated (`PERMANENT`), or the
  handler still fails after `HANDLER_MAX_ATTEMPTS` with an error that is not a
  system error. It goes to the dead-letter topic with its original key and
  bytes, the error, the source topic/partition/offset and the attempts, and the
  partition moves on. A dead letter is re-driven by sending its bytes back
  (agents/redrives.py).
- the system's (`SYSTEM`: a broker, topic, timeout or store error): nothing is
  diverted. The agent holds the message (so its partition) and retries with
  backoff until the error clears, while `/ops/health` says degraded
  (`app.stalls`); if the partition moves to another worker meanwhile, the new
  owner processes it. Handlers are idempotent, so a retry is always safe.
"""

from __future__ import annotations

import asyncio
import base64
import logging
import traceback
from collections.abc import Awaitable, Callable
from typing import Any, cast

from aiokafka.errors import KafkaError
from faust.exceptions import PartitionsMismatch, ProducerSendError
from faust.types import EventT
from pydantic import ValidationError

from agents.skipped_offsets import skipped_before
from app import faults
from app.main import app
from app.metrics import DEAD_LETTERS
from app.settings import settings
from app.stalls import stalls
from app.topics import dead_letter_topic
from models.dead_letters import DeadLetter
from models.envelope import utc_now
from models.upcasting import UnknownSchemaVersion
from tables.read_models import GapInLog, Record

log = logging.getLogger(__name__)

MAX_ATTEMPTS = settings.handler_max_attempts
BACKOFF_SECONDS = settings.handler_backoff_seconds
MAX_BACKOFF_SECONDS = 5.0
PERMANENT = (ValidationError, UnknownSchemaVersion, UnicodeDecodeError, GapInLog)
"""Errors no retry can fix: the message itself is bad (or the log lacks what it follows)."""
SYSTEM = (KafkaError, PartitionsMismatch, ProducerSendError, OSError)
"""Errors of the system around the message (OSError covers timeouts, connections, disks):
held and retried until they clear, never dead-lettered."""


Handler = Callable[[str, bytes], Awaitable[Any]]


async def guarded(
    agent: str,
    event: EventT,
    handle: Handler,
    then: Callable[[EventT, Any], Awaitable[None]] | None = None,
) -> Any:
    """`handle(topic, value)`'s result; None if the message was dead-lettered or its
    partition moved while held. Holds on system errors; never raises. Messages faust
    skipped before this one are handled first, each result passed to `then`."""
    message = event.message
    attempt = 0
    skipped_checked = False
    while True:
        try:
            if not skipped_checked:  # messages faust dropped before this one come first,
                skipped = await skipped_before(agent, message.tp, message.offset)
                skipped_checked = True
                for lost in skipped:  # each with the whole treatment, as its own message
                    done = await guarded(agent, cast(EventT, lost), handle, then)
                    if then is not None and done is not None:
                        await then(cast(EventT, lost), done)
            faults.handler_attempt(agent, attempt)  # SHOP_FAIL_FIRST: a failure on purpose
            result = await handle(message.topic, event.value)
            stalls.cleared(agent)
            return result
        except PERMANENT as error:
            await _bury(agent, event, error, attempt + 1)
            return None
        except SYSTEM as error:
            stalls.failed(agent, error)
            if not await hold(agent, event):
                return None
        except Exception as error:
            attempt += 1
            if attempt >= MAX_ATTEMPTS:
                await _bury(agent, event, error, attempt)
                return None
            log.warning("%s: attempt %d failed (%r); retrying", agent, attempt, error)
            await asyncio.sleep(BACKOFF_SECONDS * 2 ** (attempt - 1))


async def hold(agent: str, event: EventT) -> bool:
    """Wait before the next try; False when the partition went to another worker."""
    failures = stalls.failures(agent)
    if event.message.tp not in app.consumer.assignment():
        stalls.cleared(agent)
        log.warning("%s: %s moved to another worker while held", agent, event.message.tp)
        return False
    await asyncio.sleep(min(MAX_BACKOFF_SECONDS, BACKOFF_SECONDS * 2 ** min(failures, 8)))
    return True


async def _bury(agent: str, event: EventT, error: BaseException, attempts: int) -> None:
    async def held() -> bool:
        return await hold(agent, event)

    await bury(agent, event.message, error, attempts, held)


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
    log.error("%s: dead-lettered %s after %d attempt(s): %s", agent, letter.id, attempts, error)
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


def _b64(data: bytes | None) -> str | None:
    return None if data is None else base64.b64encode(data).decode()
