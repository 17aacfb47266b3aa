"""The analytics figures shaped into answers: chart rows, top SKUs, ISO times.

Pure functions of stored rows (domain/analytics.py folds them), used by the reads
of tables/analytics.py that serve GET /analytics/*: counts as integers, rates as
floats, money as strings with two decimals.
"""

from __future__ import annotations

import heapq
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

from domain.analytics import CENT, Config, empty_figures, window_start


def iso(ms: int) -> str:
    return datetime.fromtimestamp(ms / 1000, UTC).isoformat().replace("+00:00", "Z")


def derived(figures: dict[str, Any], size_seconds: int) -> dict[str, Any]:
    """Figures for a chart: counts as integers, rates as floats, money as strings."""
    placed, captured, declined = figures["placed"], figures["captured"], figures["declined"]
    payments = captured + declined
    value = Decimal(figures["placed_value"])
    return {
        "orders_placed": placed,
        "orders_value": str(value.quantize(CENT)),
        "average_order_value": str((value / placed).quantize(CENT)) if placed else None,
        "orders_per_second": round(placed / size_seconds, 4),
        "revenue": str(Decimal(figures["revenue"]).quantize(CENT)),
        "payments_captured": captured,
        "payments_declined": declined,
        "decline_rate": round(declined / payments, 4) if payments else None,
        "refunds": figures["refunded"],
        "refunded": str(Decimal(figures["refunded_amount"]).quantize(CENT)),
        "orders_cancelled": sum(figures["cancelled"].values()),
        "cancelled_by_reason": dict(sorted(figures["cancelled"].items())),
        "orders_shipped": figures["shipped"],
    }


def top_skus(skus: dict[str, list[Any]], limit: int, by: str) -> list[dict[str, Any]]:
    """The `limit` best SKUs by "quantity" or "revenue" (ties by SKU id)."""

    def rank(item: tuple[str, list[Any]]) -> tuple[Any, ...]:
        sku, (quantity, revenue) = item
        primary = Decimal(revenue) if by == "revenue" else Decimal(quantity)
        secondary = Decimal(quantity) if by == "revenue" else Decimal(revenue)
        return (-primary, -secondary, sku)

    best = heapq.nsmallest(limit, skus.items(), key=rank)
    return [
        {"sku": sku, "quantity": quantity, "revenue": str(Decimal(revenue).quantize(CENT))}
        for sku, (quantity, revenue) in best
    ]


def window_row(
    family: str,
    size_seconds: int,
    start_ms: int,
    figures: dict[str, Any] | None,
    config: Config,
    watermark: int,
    now_ms: int,
) -> dict[str, Any]:
    end = start_ms + size_seconds * 1000
    return {
        "window": family,
        "start": iso(start_ms),
        "end": iso(end),
        "start_ms": start_ms,
        "end_ms": end,
        "closed": end <= now_ms,
        "final": end + config.grace * 1000 < watermark,
        **derived(figures or empty_figures(), size_seconds),
    }


def summary_starts(size_seconds: int, last: int, until_ms: int) -> list[int]:
    """Starts of the `last` windows before the one containing `until_ms`, and that one."""
    size_ms = size_seconds * 1000
    current = window_start(until_ms, size_ms)
    return [current - n * size_ms for n in range(last, -1, -1)]
