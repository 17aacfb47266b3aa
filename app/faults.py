"""Named fault points: an environment hook that breaks a worker at one point, on purpose.

Crash and outage proofs need a worker to die or fail at an exact step, not at
a lucky moment. `SHOP_FAULT` names the points and what happens there:

    SHOP_FAULT="<point>:<action>[:<seconds>][@<hit>]"   (several: comma separated)

    kill        the process is SIGKILLed at once (no cleanup, like a power cut)
    stall:S     the point sleeps S seconds, once
    fail:S      the point raises KafkaConnectionError for S seconds (a system error)
    @N          at the N-th time the point is reached (default: the first)

Points on the write path (agents/partition_writer.py): `decided` (a batch decided
in memory, nothing appended), `append-mid-batch` (the batch's first record batch
handed to the producer, the others not yet: a batch larger than
COMMAND_APPEND_MAX_BYTES; each holds whole commands), `append-unacked` (every event of
the batch handed to the producer, none acknowledged yet), `appended` (all
acknowledged, not yet folded into the store nor answered), `tail-fold` (a
command side's tail has read events another producer appended, not yet folded
them); on a saga service's batch (agents/service.py): `service-answered` (its
commands decided and appended, nothing sent), `dispatch` (a saga command is
about to go: `@2` is between the commands of a fan-out), `answer-here` (a saga
command decided on the worker that sent it, its answer about to be decided
there too), `reply` (a command's answer is about to be sent), `service-unacked`
(its sends handed to the producer, none acknowledged), `service-sent` (all
acknowledged, its position not stored), `service-stored` (its position stored);
on a batched fold's path (agents/folds.py):
`fold-batch` (a batch folded in memory, nothing sent or written), `fold-unacked`
(its feed messages handed to the producer, not yet acknowledged), `fold-sent`
(its feed messages and dead letters acked, its rows not written), `fold-written`
(its rows and offsets written, before the next batch), `fold-revoke` (its
partitions are being revoked).
Unset, a point costs one dict lookup.

One more hook makes a handler fail, to exercise retries and dead letters
(agents/dead_letters.py):

    SHOP_FAIL_FIRST="<agent>:<N>"    that agent's handler fails its first N attempts

each with `InjectedFailure`, an error of the handler's own (retried, then
dead-lettered), not a system error.
"""

from __future__ import annotations

import asyncio
import logging
import os
import signal
import time
from dataclasses import dataclass

from aiokafka.errors import KafkaConnectionError

log = logging.getLogger(__name__)

ACTIONS = ("kill", "stall", "fail")


@dataclass
class Fault:
    point: str
    action: str
    seconds: float = 0.0
    from_hit: int = 1
    hits: int = 0
    failing_until: float | None = None


def parse(spec: str) -> dict[str, Fault]:
    """SHOP_FAULT's text -> the fault of each point (ValueError naming the bad part)."""
    faults: dict[str, Fault] = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        body, _, hit = part.partition("@")
        point, _, rest = body.partition(":")
        action, _, seconds = rest.partition(":")
        if not point or action not in ACTIONS:
            raise ValueError(f"SHOP_FAULT {part!r}: expected <point>:{'|'.join(ACTIONS)}[:s][@n]")
        try:
            faults[point] = Fault(point, action, float(seconds or 0), int(hit or 1))
        except ValueError:
            raise ValueError(f"SHOP_FAULT {part!r}: seconds and @hit must be numbers") from None
    return faults


FAULTS = parse(os.environ.get("SHOP_FAULT", ""))


async def reached(point: str) -> None:
    """The worker is at `point`: do what SHOP_FAULT says there, if anything."""
    fault = FAULTS.get(point)
    if fault is None:
        return
    fault.hits += 1
    if fault.hits < fault.from_hit:
        return
    if fault.action == "kill":
        log.warning("fault %s: SIGKILL", point)
        os.kill(os.getpid(), signal.SIGKILL)
    elif fault.action == "stall":
        if fault.hits == fault.from_hit:
            log.warning("fault %s: stalling %.1fs", point, fault.seconds)
            await asyncio.sleep(fault.seconds)
    else:
        now = time.monotonic()
        if fault.failing_until is None:
            fault.failing_until = now + fault.seconds
            log.warning("fault %s: failing for %.1fs", point, fault.seconds)
        if now < fault.failing_until:
            raise KafkaConnectionError(f"fault injected at {point}")


class InjectedFailure(RuntimeError):
    """A failure made on purpose (SHOP_FAIL_FIRST), to exercise retries."""


def parse_fail_first(spec: str) -> tuple[str, int]:
    """SHOP_FAIL_FIRST's text -> (agent, attempts to fail); no count: none."""
    name, _, count = spec.partition(":")
    return name, int(count) if count.isdigit() else 0


FAIL_FIRST = parse_fail_first(os.environ.get("SHOP_FAIL_FIRST", ""))
"""SHOP_FAIL_FIRST="agent:N": that agent's handler fails its first N attempts (tests)."""


def handler_attempt(agent: str, attempt: int) -> None:
    """`agent`'s handler is about to make its try number `attempt` (from 0) at a message:
    InjectedFailure if SHOP_FAIL_FIRST says that try fails."""
    name, count = FAIL_FIRST
    if name == agent and attempt < count:
        raise InjectedFailure(f"injected failure {attempt + 1} of {count}")
