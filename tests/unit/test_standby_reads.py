"""A read the key's owner cannot answer may be answered from this worker's warm standby
of the partition, within the client's `max_standby_lag` (web/http.py `store_of`)."""

from __future__ import annotations

from typing import Any

import pytest

from agents.folds import NotHere
from web.http import STANDBY_READ, HttpError, StandbyRead, store_of


class Fold:
    """Not reading the key's partition here; standing by for it `lag` records behind."""

    def __init__(self, lag: int | None) -> None:
        self.lag = lag
        self.store = object()

    def store_for(self, key: str) -> Any:
        raise NotHere("accounts-projection partition 5 is not folded on this worker")

    def standby_for(self, key: str) -> tuple[Any, int]:
        if self.lag is None:
            raise NotHere("no standby of accounts-projection partition 5 here")
        return self.store, self.lag


def read(fold: Fold, bound: int | None) -> tuple[Any, StandbyRead | None]:
    standby = None if bound is None else StandbyRead(bound)
    token = STANDBY_READ.set(standby)
    try:
        return store_of(fold, "acct-1"), standby  # type: ignore[arg-type]
    finally:
        STANDBY_READ.reset(token)


def test_a_read_that_does_not_allow_a_standby_is_refused() -> None:
    with pytest.raises(HttpError) as refused:
        read(Fold(lag=0), bound=None)
    assert refused.value.status == 503


def test_a_standby_within_the_bound_answers_and_says_how_far_behind() -> None:
    fold = Fold(lag=3)
    store, standby = read(fold, bound=5)
    assert store is fold.store
    assert standby is not None and standby.lag == 3


def test_a_standby_further_behind_than_the_bound_is_refused_naming_it() -> None:
    with pytest.raises(HttpError) as refused:
        read(Fold(lag=7), bound=5)
    assert refused.value.status == 503
    assert "trails the log by 7 records, more than max_standby_lag=5" in str(refused.value)


def test_no_standby_here_is_refused() -> None:
    with pytest.raises(HttpError) as refused:
        read(Fold(lag=None), bound=100)
    assert refused.value.status == 503
    assert "no standby" in str(refused.value)
