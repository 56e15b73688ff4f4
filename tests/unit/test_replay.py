"""The recorded SOLUSDTM day reads as the data README describes it."""

from __future__ import annotations

import itertools
from decimal import Decimal as D

from localkucoin.replay import random_walk, recorded_day


def test_recorded_day_has_every_second_and_the_real_outages() -> None:
    quotes = list(recorded_day())
    assert len(quotes) == 74004
    assert sum(1 for q in quotes if q is None) == 799
    assert quotes[0] is not None and quotes[0].price == D("140.083")
    assert (quotes[0].bid, quotes[0].ask) == (D("140.0528"), D("140.0538"))
    prices = [q.price for q in quotes if q is not None]
    assert D("134") < min(prices) and max(prices) < D("142")


def test_random_walk_is_deterministic_and_quoted_around_the_price() -> None:
    first = list(itertools.islice(random_walk(D("60000.0"), seed=1), 50))
    again = list(itertools.islice(random_walk(D("60000.0"), seed=1), 50))
    assert first == again
    assert all(q.bid < q.price < q.ask for q in first)
