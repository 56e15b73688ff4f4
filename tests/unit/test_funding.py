"""Funding: the core's charge, and on the in-memory database who pays, once, never below 0.

Every scenario is the 10x long SOLUSDTM of the builders (size 50, entry 100,
margin 500, open fee 3, liquidation 90.5), opened an hour before the funding
time T, on a 10,000 account (9,497 after the open). The event's rate is
0.0001 at mark 101.3: the long pays 50 × 101.3 × 0.0001 = 0.5065.
"""

from __future__ import annotations

from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from functools import partial
from typing import Any

import pytest

from cogmora_backend.funding import apply_event, apply_to_position
from cogmora_backend.settlement import settle_close
from cogmora_backend.store import Database, Document, Snapshot, Transaction
from cogmora_core import TradingConfig
from cogmora_core.contract.positions import parse_position
from cogmora_core.model import FundingCharge
from cogmora_core.money import parse_number
from cogmora_core.trading import charge_funding, liquidation_after_margin_call
from tests.support.builders import position_doc
from tests.support.ledger import ledger_total
from tests.support.memory import MemoryDatabase

CONFIG = TradingConfig()
T = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
T_MS = int(T.timestamp() * 1000)
EVENT_ID = f"kucoin_SOLUSDTM_{T_MS}"
POSITION = "users/u1/openPositions/p1"
HISTORY = "users/u1/tradeHistory/p1"


def event(rate: str = "0.0001", mark: str = "101.3", at_ms: int = T_MS) -> dict[str, Any]:
    return {"venue": "kucoin", "symbol": "SOLUSDTM", "rate": float(rate),
            "markPrice": float(mark), "fundingTimeMs": at_ms, "status": "pending",
            "createdAt": T + timedelta(seconds=1), "source": "test"}


def open_position(**overrides: Any) -> dict[str, Any]:
    return position_doc(**{"openedAt": T - timedelta(hours=1), "venue": "kucoin", **overrides})


def closing_position(requested_at: datetime, price: float = 102) -> dict[str, Any]:
    return open_position(details={"status": "closing", "closeRequest": {
        "reason": "manual", "price": price, "at": requested_at, "source": "test"}})


def history_of(position: dict[str, Any]) -> dict[str, Any]:
    return {"positionId": "p1", "symbol": position["symbol"], "symbolType": "futures",
            "positionType": position["positionType"], "size": position["size"],
            "entryPrice": position["averageEntryPrice"], "leverage": position["leverage"],
            "margin": position["margin"], "openFee": position["openFee"],
            "openedAt": position["openedAt"], "venue": "kucoin", "status": "open"}


def database(position: dict[str, Any], balance: object = 9497,
             **extra: dict[str, Any]) -> MemoryDatabase:
    return MemoryDatabase({
        "users/u1": {"balance": balance},
        POSITION: position,
        HISTORY: history_of(position),
        f"fundingEvents/{EVENT_ID}": event(),
        **{path.replace("__", "/"): doc for path, doc in extra.items()},
    })


def number(value: object) -> D:
    parsed = parse_number(value)
    assert parsed is not None, value
    return parsed


def balance(db: MemoryDatabase) -> D:
    return number(db.documents["users/u1"]["balance"])


def apply(db: MemoryDatabase, funding: dict[str, Any] | None = None) -> str:
    return apply_to_position(db, "u1", "p1", EVENT_ID, funding or event()).kind


# The core: how a payment is split.

@pytest.mark.parametrize(("due", "balance_", "margin", "expected"), [
    # A receipt goes to the balance, whatever the balance.
    ("0.5", "0", "500", FundingCharge(D("0.5"), D("0.5"))),
    # The balance pays what it can, the margin the rest.
    ("-0.5065", "1", "500", FundingCharge(D("-0.5065"), D("-0.5065"))),
    ("-0.5065", "0.3", "500", FundingCharge(D("-0.5065"), D("-0.3"), D("0.2065"))),
    ("-0.5065", "0", "500", FundingCharge(D("-0.5065"), D("0"), D("0.5065"))),
    # The rest reaches the whole margin: liquidated (the close settles from_margin).
    ("-500.3", "0.3", "500", FundingCharge(D("-500.3"), D("-0.3"), D("500"), liquidates=True)),
    # A settled position has no margin: the rest is written off.
    ("-0.5065", "0.3", None, FundingCharge(D("-0.5065"), D("-0.3"), shortfall=D("0.2065"))),
])
def test_a_payment_comes_from_the_balance_then_the_margin_and_never_below_zero(
        due: str, balance_: str, margin: str | None, expected: FundingCharge) -> None:
    charge = charge_funding(D(due), D(balance_), D(margin) if margin else None)

    assert charge == expected
    assert charge.amount == D(due) + charge.shortfall


def test_less_margin_brings_the_liquidation_price_nearer_on_either_side() -> None:
    long = parse_position(open_position())
    short = parse_position(open_position(positionType="short", liquidationPrice=109.5))

    assert liquidation_after_margin_call(long, D("0.2065")) == D("90.50413")
    assert liquidation_after_margin_call(short, D("0.2065")) == D("109.49587")
    assert liquidation_after_margin_call(long, D(0)) == D("90.5")


def test_a_short_paying_a_negative_rate_beyond_its_balance_uses_its_margin() -> None:
    db = database(open_position(positionType="short", liquidationPrice=109.5), balance=0.3)

    assert apply(db, event(rate="-0.0001")) == "applied"

    assert balance(db) == D("0")
    position = db.documents[POSITION]
    assert (position["margin"], position["liquidationPrice"]) == (499.7935, 109.49587)


# A close requested 5 s before the funding time, settled late, pays nothing.

def test_a_close_requested_before_the_funding_time_pays_nothing_though_settled_late() -> None:
    db = database(closing_position(T - timedelta(seconds=5)))

    assert apply(db) == "skipped"
    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"

    # Credit: 500 + 50 × (102 − 100) − 50 × 102 × 0.0006 = 596.94; no funding.
    assert balance(db) == D("9497") + D("596.94")
    record = db.documents[HISTORY]
    assert (record["pnl"], record.get("funding"), record.get("fundingPayments")) == (
        93.94, None, None)


def test_a_close_requested_at_the_funding_time_pays_nothing() -> None:
    db = database(closing_position(T))

    assert apply(db) == "skipped"
    assert balance(db) == D("9497")


# A position held through the funding time pays, even when settled before funding ran.

def test_a_position_settled_before_funding_ran_but_closed_after_the_funding_time_pays() -> None:
    db = database(closing_position(T + timedelta(seconds=5)))
    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"

    assert apply(db) == "applied"

    assert balance(db) == D("9497") + D("596.94") - D("0.5065")
    record = db.documents[HISTORY]
    # pnl 93.94 − 0.5065; pnlPercent = 93.4335 / 503 × 100 = 18.5752 (4 places).
    assert (record["pnl"], record["pnlPercent"], record["funding"]) == (
        93.4335, 18.5752, -0.5065)
    assert [(p["eventId"], p["amount"]) for p in record["fundingPayments"]] == [
        (EVENT_ID, -0.5065)]


def test_a_position_opened_after_the_funding_time_pays_nothing() -> None:
    db = database(open_position(openedAt=T + timedelta(milliseconds=1)))

    assert apply(db) == "skipped"
    assert balance(db) == D("9497")


# A balance never goes below zero.

def test_a_payment_larger_than_the_balance_takes_the_rest_from_the_margin() -> None:
    db = database(open_position(), balance=0.3)

    assert apply(db) == "applied"

    # 0.3 from the balance, 0.2065 from the margin (500 → 499.7935); the
    # liquidation price moves up by 0.2065 / 50 = 0.00413.
    assert balance(db) == D("0")
    position = db.documents[POSITION]
    assert (position["margin"], position["liquidationPrice"]) == (499.7935, 90.50413)
    assert position["funding"]["total"] == -0.5065
    assert position["funding"]["fromMargin"] == 0.2065


def test_a_payment_the_balance_covers_leaves_the_margin_alone() -> None:
    db = database(open_position(), balance=0.5065)

    assert apply(db) == "applied"

    assert balance(db) == D("0")
    position = db.documents[POSITION]
    assert (position["margin"], position["liquidationPrice"]) == (500, 90.5)
    assert position["funding"] == {"total": -0.5065, "count": 1, "lastEventId": EVENT_ID,
                                   "lastFundingTime": T_MS, "fromMargin": 0}
    assert db.documents[HISTORY]["fundingPayments"] == [{
        "eventId": EVENT_ID, "rate": 0.0001, "markPrice": 101.3, "amount": -0.5065,
        "fromMargin": 0, "shortfall": 0, "fundingTime": T_MS}]


def test_a_close_after_funding_took_margin_counts_it_once_in_pnl() -> None:
    db = database(open_position(), balance=0.3)
    assert apply(db) == "applied"
    db.documents[POSITION]["details"] = closing_position(T + timedelta(seconds=5))["details"]

    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"

    # Credit 499.7935 + 100 − 3.06 = 596.7335; pnl as if the balance had paid it all:
    # 93.94 − 0.5065, and pnlPercent of the opening cost 503.
    assert balance(db) == D("596.7335")
    record = db.documents[HISTORY]
    assert (record["credit"], record["pnl"], record["pnlPercent"], record["funding"]) == (
        596.7335, 93.4335, 18.5752, -0.5065)


def test_a_payment_that_uses_up_the_margin_liquidates_at_the_funding_mark() -> None:
    db = database(open_position(), balance=0.3,
                  **{f"fundingEvents__{EVENT_ID}": event(rate="0.1")})

    assert apply(db, event(rate="0.1")) == "applied"

    # Due 50 × 101.3 × 0.1 = 506.5: 0.3 from the balance, 506.2 ≥ the 500 margin.
    # Closed at 101.3: equity 500 + 65 − 3.039 (fee) = 561.961 pays the 506.2;
    # the balance gets the remaining 55.761.
    assert POSITION not in db.documents
    assert balance(db) == D("55.761")
    record = db.documents[HISTORY]
    assert {key: record[key] for key in (
        "status", "closeReason", "closeDetail", "closePrice", "closeFee", "credit", "pnl",
        "pnlPercent", "funding", "closeRequestedAt")} == {
        "status": "closed", "closeReason": "liquidation", "closeDetail": "funding",
        "closePrice": 101.3, "closeFee": 3.039, "credit": 55.761,
        # 55.761 − 503 − 0.3: pnlPercent −447.539 / 503 × 100.
        "pnl": -447.539, "pnlPercent": -88.974, "funding": -506.5, "closeRequestedAt": T}
    assert [(p["amount"], p["fromMargin"], p["shortfall"])
            for p in record["fundingPayments"]] == [(-506.5, 506.2, 0)]


def test_what_the_position_cannot_pay_either_is_written_off() -> None:
    db = database(open_position(), balance=0.3)

    assert apply(db, event(rate="0.2")) == "applied"

    # Due 1,013: 0.3 from the balance, the whole equity 561.961 from the position,
    # 450.739 written off; the account lost its 503 and 0.3, no more.
    assert balance(db) == D("0")
    record = db.documents[HISTORY]
    assert (record["credit"], record["pnl"], record["funding"]) == (0, -503.3, -562.261)
    assert [(p["amount"], p["fromMargin"], p["shortfall"])
            for p in record["fundingPayments"]] == [(-562.261, 561.961, 450.739)]


def test_a_settled_position_pays_from_the_balance_and_the_rest_is_written_off() -> None:
    db = database(closing_position(T + timedelta(seconds=5)), balance=0)
    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"
    assert balance(db) == D("596.94")

    assert apply(db, event(rate="0.2")) == "applied"

    assert balance(db) == D("0")
    record = db.documents[HISTORY]
    # pnl 93.94 − 596.94 = −503: the position cost everything it was given, no more.
    assert (record["pnl"], record["pnlPercent"], record["funding"]) == (-503, -100, -596.94)
    assert [(p["amount"], p["shortfall"]) for p in record["fundingPayments"]] == [
        (-596.94, 416.06)]


def test_a_settled_short_held_through_the_funding_time_receives() -> None:
    short = position_doc(positionType="short", liquidationPrice=109.5,
                         openedAt=T - timedelta(hours=1), venue="kucoin",
                         details={"status": "closing", "closeRequest": {
                             "reason": "manual", "price": 102,
                             "at": T + timedelta(seconds=5), "source": "test"}})
    db = database(short)
    assert settle_close(db, "u1", "p1", CONFIG).kind == "settled"

    assert apply(db) == "applied"

    # Credit 500 − 100 − 3.06 = 396.94, then + 0.5065; pnl −106.06 + 0.5065.
    assert balance(db) == D("9497") + D("396.94") + D("0.5065")
    assert db.documents[HISTORY]["pnl"] == -105.5535


def test_a_manual_close_not_yet_priced_still_holds_the_position() -> None:
    db = database(open_position(details={"status": "closing"}))

    assert apply(db) == "applied"
    assert balance(db) == D("9497") - D("0.5065")


def test_each_event_pays_once_in_any_order() -> None:
    later_ms = T_MS + 8 * 3600 * 1000
    later_id = f"kucoin_SOLUSDTM_{later_ms}"
    db = database(open_position())

    assert apply_to_position(db, "u1", "p1", later_id, event(at_ms=later_ms)).kind == "applied"
    assert apply(db) == "applied"
    assert apply(db) == "skipped"
    assert apply_to_position(db, "u1", "p1", later_id, event(at_ms=later_ms)).kind == "skipped"

    assert balance(db) == D("9497") - 2 * D("0.5065")
    assert db.documents[POSITION]["funding"]["count"] == 2
    assert [p["eventId"] for p in db.documents[HISTORY]["fundingPayments"]] == [
        later_id, EVENT_ID]


def test_another_venues_or_symbols_position_is_not_charged() -> None:
    db = database(open_position(venue="backpack", symbol="SOL_USDC_PERP"))

    assert apply(db) == "skipped"
    assert balance(db) == D("9497")


# applyFunding over every position, racing the settlement of a close.

class Interleaving(MemoryDatabase):
    """The in-memory database, running rivals just before the n-th call of the main process.

    Every call (read, query, transaction, batch) of the process under test
    is a point where another process may act; the rivals' own calls do not count.
    """

    def __init__(self, documents: dict[str, Document],
                 rivals: dict[int, list[Callable[[], object]]]) -> None:
        super().__init__(documents)
        self.now = T + timedelta(seconds=30)
        self.rivals = {at: list(due) for at, due in rivals.items()}
        self.calls = 0
        self._in_rival = False

    def _point(self) -> None:
        if self._in_rival:
            return
        due = self.rivals.pop(self.calls, [])
        self.calls += 1
        self._in_rival = True
        try:
            for rival in due:
                rival()
        finally:
            self._in_rival = False

    def finish(self) -> None:
        """Run the rivals whose point never came (after the whole process)."""
        for at in sorted(self.rivals):
            for rival in self.rivals.pop(at):
                rival()

    def run(self, work: Callable[[Transaction], Any],
            done: Callable[[], Any] | None = None) -> Any:
        self._point()
        return super().run(work, done)

    def read(self, path: str) -> Document | None:
        self._point()
        return super().read(path)

    def query(self, spec: Any, equals: tuple[Any, ...],
              bound: Any = None) -> list[Snapshot]:
        self._point()
        return super().query(spec, equals, bound)

    def write(self, work: Callable[[Transaction], None]) -> None:
        self._point()
        super().write(work)


def race(position: dict[str, Any], rivals: dict[int, list[Callable[[Database], object]]],
         **extra: dict[str, Any]) -> Interleaving:
    """Apply the event with `rivals` at their points, then run whatever is left."""
    documents = database(position, **extra).documents
    db = Interleaving(documents, {})
    db.rivals = {at: [partial(rival, db) for rival in due] for at, due in rivals.items()}
    apply_event(db, EVENT_ID)
    db.finish()
    return db


def settle(db: Database) -> object:
    return settle_close(db, "u1", "p1", CONFIG)


def calls_of_one_run() -> int:
    db = race(open_position(), {})
    return db.calls


POINTS = range(calls_of_one_run() + 1)


@pytest.mark.parametrize("at", POINTS)
def test_a_position_held_through_the_funding_time_pays_once_whenever_it_settles(
        at: int) -> None:
    db = race(closing_position(T + timedelta(seconds=5)), {at: [settle]})

    assert POSITION not in db.documents
    assert balance(db) == D("9497") + D("596.94") - D("0.5065")
    record = db.documents[HISTORY]
    assert [(p["eventId"], p["amount"]) for p in record["fundingPayments"]] == [
        (EVENT_ID, -0.5065)]
    assert (record["pnl"], record["funding"]) == (93.4335, -0.5065)
    funding = db.documents[f"fundingEvents/{EVENT_ID}"]
    assert (funding["status"], funding["positions"], funding["netPaidByTraders"]) == (
        "applied", 1, 0.5065)


@pytest.mark.parametrize("at", POINTS)
def test_a_close_requested_before_the_funding_time_never_pays_whenever_it_settles(
        at: int) -> None:
    db = race(closing_position(T - timedelta(seconds=5)), {at: [settle]})

    assert balance(db) == D("9497") + D("596.94")
    record = db.documents[HISTORY]
    assert (record["pnl"], "fundingPayments" in record) == (93.94, False)
    funding = db.documents[f"fundingEvents/{EVENT_ID}"]
    assert (funding["status"], funding["positions"], funding["netPaidByTraders"]) == (
        "applied", 0, 0)


@pytest.mark.parametrize("settle_at", POINTS)
@pytest.mark.parametrize("rerun_at", POINTS)
def test_a_second_run_racing_the_first_and_the_settlement_still_pays_once(
        settle_at: int, rerun_at: int) -> None:
    def rerun(db: Database) -> object:
        return apply_event(db, EVENT_ID)

    db = race(closing_position(T + timedelta(seconds=5)),
              {settle_at: [settle], rerun_at: [rerun]} if settle_at != rerun_at
              else {settle_at: [settle, rerun]})

    assert balance(db) == D("9497") + D("596.94") - D("0.5065")
    assert len(db.documents[HISTORY]["fundingPayments"]) == 1
    funding = db.documents[f"fundingEvents/{EVENT_ID}"]
    assert (funding["status"], funding["positions"], funding["netPaidByTraders"]) == (
        "applied", 1, 0.5065)


def test_applying_an_event_pays_open_and_settled_positions_of_its_market_only() -> None:
    settled_short = position_doc(
        positionType="short", liquidationPrice=109.5, openedAt=T - timedelta(hours=1),
        venue="kucoin", status="closed", symbolType="futures")
    db = Interleaving(database(open_position(), **{
        # u2: a short settled after the funding time, held through it: receives.
        "users__u2": {"balance": 100},
        "users__u2__tradeHistory__s1": {
            **history_of(settled_short), "positionId": "s1", "status": "closed",
            "pnl": -106.06, "closeRequestedAt": T + timedelta(seconds=1),
            "closedAt": T + timedelta(seconds=2)},
        # u3: closed before the funding time; u4: another venue's perpetual.
        "users__u3": {"balance": 100},
        "users__u3__tradeHistory__c1": {
            **history_of(open_position()), "positionId": "c1", "status": "closed",
            "pnl": 1, "closeRequestedAt": T - timedelta(seconds=1),
            "closedAt": T + timedelta(seconds=2)},
        "users__u4": {"balance": 100},
        "users__u4__openPositions__b1": open_position(venue="backpack"),
    }).documents, {})

    assert apply_event(db, EVENT_ID).kind == "applied"
    assert apply_event(db, EVENT_ID).kind == "skipped"

    assert balance(db) == D("9497") - D("0.5065")
    assert db.documents["users/u2"]["balance"] == 100.5065
    assert db.documents["users/u2/tradeHistory/s1"]["pnl"] == -105.5535
    assert db.documents["users/u3"]["balance"] == 100
    assert db.documents["users/u4"]["balance"] == 100
    funding = db.documents[f"fundingEvents/{EVENT_ID}"]
    assert (funding["status"], funding["positions"], funding["netPaidByTraders"]) == (
        "applied", 2, 0)


@pytest.mark.parametrize(("balance_before", "rate", "requested_at"), [
    (9497, "0.0001", None), (9497, "-0.0003", None), (0.3, "0.0001", None),
    (0.3, "0.1", None), (0.3, "0.2", None),
    (9497, "0.0001", T + timedelta(seconds=5)), (0, "0.2", T + timedelta(seconds=5)),
    (9497, "0.0001", T - timedelta(seconds=5)),
])
def test_the_ledger_identity_holds_through_funding_and_the_close(
        balance_before: float, rate: str, requested_at: datetime | None) -> None:
    start = D(str(balance_before)) + D("503")
    db = database(open_position(), balance=balance_before)
    for step in range(3):
        positions = [doc for path, doc in db.documents.items() if "/openPositions/" in path]
        history = [doc for path, doc in db.documents.items() if "/tradeHistory/" in path]
        assert ledger_total(db.documents["users/u1"]["balance"], positions, history) == start
        assert balance(db) >= 0
        if step == 0:
            if requested_at is not None:
                db.documents[POSITION]["details"] = closing_position(requested_at)["details"]
                settle_close(db, "u1", "p1", CONFIG)
        elif step == 1:
            apply(db, event(rate=rate))
            if POSITION in db.documents:
                db.documents[POSITION]["details"] = closing_position(
                    T + timedelta(seconds=5))["details"]
                settle_close(db, "u1", "p1", CONFIG)
