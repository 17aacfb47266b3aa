"""Agents held on a system error: what `/ops/health` and `/metrics` report as degraded.

A system error (broker unreachable, missing topic, timeout, store error) is not
the message's fault: the agent keeps its partition and retries until it clears.
This registry turns that into a health state, logged once per change.
"""

from __future__ import annotations

import logging
import time
from dataclasses import dataclass

from app.metrics import AGENT_STALLED, SYSTEM_ERRORS

log = logging.getLogger(__name__)


@dataclass
class Stall:
    agent: str
    error: str
    since: float
    """time.time() of the first failure."""
    failures: int = 1


class Stalls:
    def __init__(self) -> None:
        self._by_agent: dict[str, Stall] = {}

    def failed(self, agent: str, error: BaseException) -> None:
        """One more system error of `agent`; logs when the agent becomes stalled."""
        SYSTEM_ERRORS.labels(agent=agent, error_type=type(error).__name__).inc()
        stall = self._by_agent.get(agent)
        if stall is not None:
            stall.failures += 1
            stall.error = f"{type(error).__name__}: {error}"
            return
        self._by_agent[agent] = Stall(agent, f"{type(error).__name__}: {error}", time.time())
        AGENT_STALLED.labels(agent=agent).set(1)
        log.warning(
            "%s: held on a system error, retrying until it clears (no dead letter): %r",
            agent,
            error,
        )

    def cleared(self, agent: str) -> None:
        stall = self._by_agent.pop(agent, None)
        if stall is None:
            return
        AGENT_STALLED.labels(agent=agent).set(0)
        log.warning(
            "%s: recovered after %.1fs and %d failed attempt(s)",
            agent,
            time.time() - stall.since,
            stall.failures,
        )

    def failures(self, agent: str) -> int:
        stall = self._by_agent.get(agent)
        return 0 if stall is None else stall.failures

    def current(self) -> list[dict[str, object]]:
        return [
            {"agent": s.agent, "error": s.error[:300], "since": s.since, "failures": s.failures}
            for s in self._by_agent.values()
        ]


stalls = Stalls()
