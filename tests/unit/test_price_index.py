"""The price index fires exactly what a brute-force scan with the core's rules fires."""

from __future__ import annotations

from decimal import Decimal as D

from hypothesis import given, settings
from hypothesis import strategies as st

from cogmora_core.model import Tick
from cogmora_core.trading import close_reason, trigger_fires
from tests.support.builders import position_doc, trigger_doc
from worker.book import PriceIndex
from worker.documents import armed_position, armed_trigger

prices = st.integers(min_value=50, max_value=150).map(D)


@st.composite
def documents(draw: st.DrawFn) -> tuple[str, dict]:
    index = draw(st.integers(0, 10_000_000))
    if draw(st.booleans()):
        target = draw(prices)
        condition = draw(st.sampled_from(["above", "below", "market"]))
        doc = trigger_doc(symbol="SOLUSDTM", condition=condition, targetPrice=target,
                          leverage=2, action="long", details={"status": "active"})
        if condition == "market":
            del doc["targetPrice"]
        return f"users/u{index}/tradeTriggers/t{index}", doc
    side = draw(st.sampled_from(["long", "short"]))
    entry = D(100)
    sl = draw(st.one_of(st.none(), prices))
    tp = draw(st.one_of(st.none(), prices))
    liq = draw(st.one_of(st.none(), prices))
    details: dict = {"status": draw(st.sampled_from(["open", "open", "closing"]))}
    if sl is not None:
        details["stopLoss"] = int(sl)
    if tp is not None:
        details["takeProfit"] = int(tp)
    doc = position_doc(positionType=side, averageEntryPrice=int(entry), details=details,
                       liquidationPrice=int(liq) if liq is not None else None)
    return f"users/u{index}/openPositions/p{index}", doc


def brute_force(armed: list, price: D) -> set[str]:
    fired = set()
    for item in armed:
        if item.immediate:
            fired.add(item.path)
        elif item.trigger is not None:
            if trigger_fires(item.trigger.condition, item.trigger.target_price, price):
                fired.add(item.path)
        elif close_reason(item.position, price) is not None:
            fired.add(item.path)
    return fired


def arm(doc_path: str, doc: dict):
    if "/tradeTriggers/" in doc_path:
        return armed_trigger(doc_path, doc)
    return armed_position(doc_path, doc)


@settings(max_examples=300, deadline=None)
@given(st.lists(documents(), min_size=0, max_size=60, unique_by=lambda d: d[0]),
       st.lists(prices, min_size=1, max_size=12))
def test_index_matches_brute_force_scan_on_random_books(docs: list, path_prices: list) -> None:
    index = PriceIndex()
    resting = []
    for path, doc in docs:
        armed = arm(path, doc)
        if armed is not None:
            index.arm(armed)
            resting.append(armed)

    for price in path_prices:
        expected = brute_force(resting, price)
        hits = index.on_tick(Tick("SOLUSDTM", price=price))
        assert sorted(h.armed.path for h in hits) == sorted(expected)
        resting = [a for a in resting if a.path not in expected]
        assert len(index) == len(resting)


def test_a_level_that_stays_crossed_fires_once() -> None:
    index = PriceIndex()
    index.arm(armed_trigger("users/u/tradeTriggers/t", trigger_doc(targetPrice=100,
                                                                    symbol="SOLUSDTM")))
    assert len(index.on_tick(Tick("SOLUSDTM", price=D("99")))) == 1
    assert index.on_tick(Tick("SOLUSDTM", price=D("98"))) == []


def test_disarm_and_rearm_on_edit() -> None:
    index = PriceIndex()
    path = "users/u/tradeTriggers/t"
    index.arm(armed_trigger(path, trigger_doc(targetPrice=100, symbol="SOLUSDTM")))
    index.arm(armed_trigger(path, trigger_doc(targetPrice=90, symbol="SOLUSDTM")))
    assert index.levels() == 1
    assert index.on_tick(Tick("SOLUSDTM", price=D("95"))) == []
    index.disarm(path)
    assert index.on_tick(Tick("SOLUSDTM", price=D("80"))) == []
    assert len(index) == 0


def test_position_crossing_two_levels_fires_once() -> None:
    index = PriceIndex()
    index.arm(armed_position("users/u/openPositions/p",
                             position_doc(details={"status": "open", "stopLoss": 95})))
    hits = index.on_tick(Tick("SOLUSDTM", price=D("85")))  # below stop and liquidation
    assert [h.armed.path for h in hits] == ["users/u/openPositions/p"]
    assert index.levels() == 0
