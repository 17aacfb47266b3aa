"""Windowed analytics: facts from the event topics, folded by event time on ONE partition.

Two batched folds (tables/analytics.py), both run where the orders' commands
are decided:

* `analytics-facts` folds orders.events and payments.events, partition by
  partition, into messages of facts on the one-partition `analytics.facts`;
* `analytics` folds `analytics.facts` into the windows, where partition 0 of
  the order commands is decided (one store sees every fact).

Why a deliberate repartition to one key rather than per-partition
pre-aggregates: the figures are sums over everything, the volume after
filtering is small (a few facts per order), one fold makes dedup and lateness
exact and simple, and the reads need no scatter-gather across workers.
"""

from __future__ import annotations

from agents.folds import FoldRunner
from app.main import app
from tables.analytics import FactsFold, WindowFold

FACTS_WAIT_MS = 500
"""Longest the facts fold's fetches wait to fill: each partition's batch is one message of
facts, so a longer wait sends fewer, fuller messages (at 50 orders/s, about 0.3 an order
instead of 1.2 at the read models' 100 ms); the windows trail by up to this more, and
the dashboard's windows are seconds wide."""

analytics_facts = FoldRunner(FactsFold(), outputs_only=True, fetch_wait_ms=FACTS_WAIT_MS)
analytics_windows = FoldRunner(WindowFold(), single=True)
app.service(analytics_facts)  # type: ignore[arg-type]
app.service(analytics_windows)  # type: ignore[arg-type]
