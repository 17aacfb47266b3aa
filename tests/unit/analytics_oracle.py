"""The analytics tests' oracle: every window's figures recomputed from the facts, by brute
force, with none of the fold's bookkeeping (no watermark, lateness, dedup or expiry)."""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

from domain.analytics import (
    Config,
    Fact,
    empty_figures,
    fold_figures,
    fold_skus,
    hopping_starts,
    window_start,
)


def brute_force(
    facts: Iterable[Fact], config: Config
) -> tuple[dict[str, dict[int, dict[str, Any]]], dict[int, dict[str, list[Any]]]]:
    """Every window's figures straight from facts, ignoring lateness and dedup by design of
    the caller (pass distinct, in-grace facts): family -> start -> figures, and SKU windows."""
    windows: dict[str, dict[int, dict[str, Any]]] = {f: {} for f in config.tumbling}
    skus: dict[int, dict[str, list[Any]]] = {}
    for fact in facts:
        for family, size in config.tumbling.items():
            start = window_start(fact["at"], size * 1000)
            windows[family][start] = fold_figures(
                windows[family].get(start) or empty_figures(), fact
            )
        if fact.get("lines"):
            for start in hopping_starts(fact["at"], config.hop_size * 1000, config.hop_step * 1000):
                skus[start] = fold_skus(skus.get(start) or {}, fact)
    return windows, skus
