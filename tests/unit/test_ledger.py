"""The account journal on the in-memory database: exact entries, once, and the migration.

Every entry is asserted whole, to the last decimal. The fake's clock (`now`)
is 2026-01-01 00:00 UTC: every server time written is that instant.
"""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta
from decimal import Decimal as D
from typing import Any

import pytest

from cogmora_backend.funding import apply_to_position
from cogmora_backend.journal import migrate_account, migrate_all
from cogmora_backend.settlement import initialize_account, settle_close, settle_execution
from cogmora_core import TradingConfig
from cogmora_core.contract import ledger
from cogmora_core.errors import Rejected
from cogmora_core.model import Settlement
from cogmora_core.money import parse_number, quantize
from tests.support.builders import execution_doc, position_doc, spot_execution_doc
from tests.support.memory import MemoryDatabase

CONFIG = TradingConfig()
NOW = datetime(2026, 1, 1, tzinfo=UTC)
T = datetime(2026, 1, 1, 8, 0, tzinfo=UTC)
T_MS = int(T.timestamp() * 1000)
EVENT_ID = f"kucoin_SOLUSDTM_{T_MS}"


def journal(db: MemoryDatabase, uid: str = "u1") -> dict[str, dict[str, Any]]:
    prefix = f"users/{uid}/ledger/"
    return {path[len(prefix):]: doc for path, doc in db.documents.items()
            if path.startswith(prefix)}


def balance(db: MemoryDatabase, uid: str = "u1") -> D:
    value = parse_number(db.documents[f"users/{uid}"]["balance"])
    assert value is not None
    return value


def journal_sum(db: MemoryDatabase, uid: str = "u1") -> D:
    return sum((D(repr(e["amount"])) if isinstance(e["amount"], float) else D(e["amount"])
                for e in journal(db, uid).values()), D(0))


def closing(price: object, reason: str = "take_profit", **overrides: Any) -> dict[str, Any]:
    return position_doc(details={"status": "closing", "closeRequest": {
        "reason": reason, "price": price, "source": "worker"}}, **overrides)


# ---- funded, open, close ------------------------------------------------------------------


def test_a_new_account_is_funded_with_one_entry() -> None:
    db = MemoryDatabase({"users/u1": {"displayName": "A"}})

    initialize_account(db, "u1", CONFIG)
    initialize_account(db, "u1", CONFIG)

    assert journal(db) == {"funded": {
        "kind": "funded", "amount": 10000, "balanceAfter": 10000, "currency": "USDT",
        "ref": "initializeAccount", "symbol": None, "at": NOW}}


def test_an_account_the_reconciler_creates_is_funded_with_its_entry() -> None:
    db = MemoryDatabase()

    initialize_account(db, "u9", CONFIG, create=True)

    assert journal(db, "u9")["funded"]["amount"] == 10000
    assert balance(db, "u9") == journal_sum(db, "u9") == D(10000)


def test_a_futures_open_records_margin_plus_fee() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 10000},
                         "users/u1/executedTriggers/e1": execution_doc()})

    settle_execution(db, "u1", "e1", CONFIG)

    # 100 margin at 10x: notional 1,000, fee 0.06 % = 0.6.
    assert journal(db) == {"open_e1": {
        "kind": "open", "amount": -100.6, "balanceAfter": 9899.4, "currency": "USDT",
        "ref": "e1", "symbol": "XBTUSDTM", "at": NOW, "margin": 100, "fee": 0.6}}


def test_a_spot_open_and_close_record_cost_fee_and_credit() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 5000},
                         "users/u1/executedTriggers/s1": spot_execution_doc()})

    settle_execution(db, "u1", "s1", CONFIG)
    db.documents["users/u1/openPositions/s1"]["details"] = {
        "status": "closing", "closeRequest": {"reason": "manual", "price": 55000,
                                              "source": "worker"}}
    settle_close(db, "u1", "s1", CONFIG)

    # Buy 1,000 at 50,000 (fee 0.1 % = 1): size 0.02. Sell at 55,000: 1,100, fee 1.1.
    assert journal(db) == {
        "open_s1": {"kind": "open", "amount": -1001, "balanceAfter": 3999, "currency": "USDT",
                    "ref": "s1", "symbol": "BTC-USDT", "at": NOW, "margin": 1000, "fee": 1},
        "close_s1": {"kind": "close", "amount": 1098.9, "balanceAfter": 5097.9,
                     "currency": "USDT", "ref": "s1", "symbol": "BTC-USDT", "at": NOW,
                     "grossPnl": 100, "fee": 1.1, "funding": 0, "closeReason": "manual"}}
    assert balance(db) == D("5097.9")


def test_a_futures_close_records_the_credit_with_gross_fee_and_funding() -> None:
    position = closing(110, funding={"total": -0.5065, "count": 1, "fromMargin": 0})
    db = MemoryDatabase({"users/u1": {"balance": 9497},
                         "users/u1/openPositions/p1": position})

    settle_close(db, "u1", "p1", CONFIG)

    # gross 50 × (110 − 100) = 500, fee 50 × 110 × 0.06 % = 3.3, credit 500 + 500 − 3.3.
    assert journal(db) == {"close_p1": {
        "kind": "close", "amount": 996.7, "balanceAfter": 10493.7, "currency": "USDT",
        "ref": "p1", "symbol": "SOLUSDTM", "at": NOW, "grossPnl": 500, "fee": 3.3,
        "funding": -0.5065, "closeReason": "take_profit"}}


def test_a_liquidation_records_what_is_left_of_the_margin() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 0},
                         "users/u1/openPositions/p1": closing(90.5, "liquidation")})

    settle_close(db, "u1", "p1", CONFIG)

    # gross 50 × −9.5 = −475, fee 50 × 90.5 × 0.06 % = 2.715: 500 − 475 − 2.715.
    assert journal(db)["close_p1"] | {"at": None} == {
        "kind": "close", "amount": 22.285, "balanceAfter": 22.285, "currency": "USDT",
        "ref": "p1", "symbol": "SOLUSDTM", "at": None, "grossPnl": -475, "fee": 2.715,
        "funding": 0, "closeReason": "liquidation"}


def test_a_liquidation_past_the_margin_records_a_zero_credit() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 7},
                         "users/u1/openPositions/p1": closing(80, "liquidation")})

    settle_close(db, "u1", "p1", CONFIG)

    entry = journal(db)["close_p1"]
    assert (entry["amount"], entry["balanceAfter"], entry["grossPnl"]) == (0, 7, -1000)


def test_a_rejected_execution_writes_no_entry() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 100},
                         "users/u1/executedTriggers/e1": spot_execution_doc(amount=100)})

    assert settle_execution(db, "u1", "e1", CONFIG).reason == "insufficient_balance"

    assert journal(db) == {}


def test_a_close_that_cannot_settle_writes_no_entry() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 0},
                         "users/u1/openPositions/p1": closing(110) | {"size": "x"}})

    assert settle_close(db, "u1", "p1", CONFIG).kind == "rejected"

    assert journal(db) == {}


def test_a_duplicated_execution_and_close_write_one_entry_each() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 10000},
                         "users/u1/executedTriggers/e1": execution_doc()})

    settle_execution(db, "u1", "e1", CONFIG)
    first = dict(journal(db))
    settle_execution(db, "u1", "e1", CONFIG)
    assert journal(db) == first

    db.documents["users/u1/openPositions/e1"]["details"] = {
        "status": "closing", "closeRequest": {"reason": "manual", "price": 61000,
                                              "source": "worker"}}
    settle_close(db, "u1", "e1", CONFIG)
    settle_close(db, "u1", "e1", CONFIG)

    assert sorted(journal(db)) == ["close_e1", "open_e1"]
    assert balance(db) == journal_sum(db) + D(10000)


# ---- funding --------------------------------------------------------------------------------


def funding_event(rate: str) -> dict[str, Any]:
    return {"venue": "kucoin", "symbol": "SOLUSDTM", "rate": float(rate), "markPrice": 101.3,
            "fundingTimeMs": T_MS, "status": "pending", "createdAt": T, "source": "test"}


def funding_db(balance: object = 9497, **position: Any) -> MemoryDatabase:
    return MemoryDatabase({
        "users/u1": {"balance": balance},
        "users/u1/openPositions/p1": position_doc(openedAt=T - timedelta(hours=1),
                                                  venue="kucoin", **position)})


def test_a_long_pays_funding_out_of_the_balance() -> None:
    db = funding_db()

    apply_to_position(db, "u1", "p1", EVENT_ID, funding_event("0.0001"), CONFIG)
    apply_to_position(db, "u1", "p1", EVENT_ID, funding_event("0.0001"), CONFIG)

    # 50 × 101.3 × 0.0001 = 0.5065, paid by the long.
    assert journal(db) == {f"funding_{EVENT_ID}_p1": {
        "kind": "funding", "amount": -0.5065, "balanceAfter": 9496.4935, "currency": "USDT",
        "ref": EVENT_ID, "symbol": "SOLUSDTM", "at": NOW, "positionId": "p1",
        "fromMargin": 0, "shortfall": 0}}


def test_a_short_receives_funding_into_the_balance() -> None:
    db = funding_db(positionType="short", liquidationPrice=109.5)

    apply_to_position(db, "u1", "p1", EVENT_ID, funding_event("0.0001"), CONFIG)

    entry = journal(db)[f"funding_{EVENT_ID}_p1"]
    assert (entry["amount"], entry["balanceAfter"], entry["fromMargin"]) == (0.5065, 9497.5065, 0)


def test_funding_taken_from_the_margin_records_what_the_balance_paid() -> None:
    db = funding_db(balance=0.2)

    apply_to_position(db, "u1", "p1", EVENT_ID, funding_event("0.0001"), CONFIG)

    entry = journal(db)[f"funding_{EVENT_ID}_p1"]
    assert (entry["amount"], entry["balanceAfter"], entry["fromMargin"]) == (-0.2, 0, 0.3065)


def test_a_liquidation_by_funding_records_the_payment_then_the_close() -> None:
    db = funding_db(balance=10)

    apply_to_position(db, "u1", "p1", EVENT_ID, funding_event("0.2"), CONFIG)

    # Owes 50 × 101.3 × 0.2 = 1,013: the balance pays 10, the position's equity at
    # 101.3 (500 + 65 − 3.039 = 561.961) the rest as far as it reaches; 441.039 is
    # written off and the close credits nothing.
    entries = journal(db)
    assert entries[f"funding_{EVENT_ID}_p1"] | {"at": None} == {
        "kind": "funding", "amount": -10, "balanceAfter": 0, "currency": "USDT",
        "ref": EVENT_ID, "symbol": "SOLUSDTM", "at": None, "positionId": "p1",
        "fromMargin": 561.961, "shortfall": 441.039}
    assert entries["close_p1"] | {"at": None} == {
        "kind": "close", "amount": 0, "balanceAfter": 0, "currency": "USDT", "ref": "p1",
        "symbol": "SOLUSDTM", "at": None, "grossPnl": 65, "fee": 3.039, "funding": -571.961,
        "closeReason": "liquidation"}
    ordered = ledger.chain_order(ledger.parse_entry(i, d) for i, d in entries.items())
    assert [e.id for e in ordered] == [f"funding_{EVENT_ID}_p1", "close_p1"]


def test_funding_on_a_settled_position_records_what_the_balance_paid() -> None:
    position = position_doc(openedAt=T - timedelta(hours=1), venue="kucoin")
    record = {"positionId": "p1", "symbol": "SOLUSDTM", "symbolType": "futures",
              "positionType": "long", "size": 50, "entryPrice": 100, "leverage": 10,
              "margin": 500, "openFee": 3, "openedAt": position["openedAt"],
              "venue": "kucoin", "status": "closed", "pnl": 10, "credit": 513,
              "closedAt": T + timedelta(minutes=1),
              "closeRequestedAt": T + timedelta(seconds=30)}
    db = MemoryDatabase({"users/u1": {"balance": 0.5},
                         "users/u1/tradeHistory/p1": record})

    apply_to_position(db, "u1", "p1", EVENT_ID, funding_event("0.0001"), CONFIG)

    entry = journal(db)[f"funding_{EVENT_ID}_p1"]
    assert (entry["amount"], entry["balanceAfter"], entry["shortfall"]) == (-0.5, 0, 0.0065)


# ---- the contract: parsing and chain order -------------------------------------------------


def test_an_unreadable_entry_is_rejected() -> None:
    with pytest.raises(Rejected):
        ledger.parse_entry("x", {"kind": "gift", "amount": 1, "balanceAfter": 1, "ref": "r"})
    with pytest.raises(Rejected):
        ledger.parse_entry("x", {"kind": "open", "amount": "1", "balanceAfter": 1, "ref": "r"})


def test_entries_of_one_transaction_are_ordered_by_their_chain() -> None:
    at = NOW
    entries = [ledger.parse_entry(e.id, e.document) for e in (
        ledger.open_entry("b", "X", D(10), D(0), D(80), at),
        ledger.funded_entry(D(100), at - timedelta(seconds=1)),
        ledger.open_entry("a", "X", D(10), D(0), D(90), at))]

    ordered = ledger.chain_order(entries)

    assert [e.id for e in ordered] == ["funded", "open_a", "open_b"]
    assert [e.id for e in ledger.chain_order(reversed(entries))] == [
        "funded", "open_a", "open_b"]
    assert ledger.check_chain(ordered) == []
    assert ledger.total(ordered) == D(80)


def _settlement(credit: D) -> Settlement:
    return Settlement(close_price=D(1), close_fee=D(0), gross_pnl=credit, credit=credit,
                      pnl=credit, pnl_percent=D(0))


def test_hundreds_of_entries_of_one_account_settlement_are_ordered_by_their_chain() -> None:
    # One transaction settling a whale's marks: liquidations credit nothing (their
    # entries start and end at the same balance), other closes credit, opens debit.
    at = NOW
    balance, written = D("5000"), []
    for n in range(300):
        if n % 3 == 0:
            change, entry = D(0), None
        elif n % 3 == 1:
            change = D(n) / 7
        else:
            change = -D(n) / 3
        balance = quantize(balance + change)
        if change < 0:
            entry = ledger.open_entry(f"e{n:03}", "X", -change, D(0), balance, at)
        else:
            settlement = _settlement(change)
            entry = ledger.close_entry(f"p{n:03}", "X", settlement, D(0), "liquidation",
                                       balance, at)
        written.append(ledger.parse_entry(entry.id, entry.document))
    funded = ledger.funded_entry(D(5000), at - timedelta(seconds=1))
    shuffled = [ledger.parse_entry(funded.id, funded.document), *written]
    random.Random(7).shuffle(shuffled)

    ordered = ledger.chain_order(shuffled)

    assert ledger.check_chain(ordered) == []
    assert ordered[0].id == "funded" and len(ordered) == 301
    assert ledger.total(ordered) == balance == ordered[-1].balance_after


def test_a_zero_entry_is_chained_before_the_entry_that_leaves_its_balance() -> None:
    # From 100: a liquidation (100 → 100) and an open (100 → 90). Taking the open
    # first would strand the liquidation; the chain takes both.
    at = NOW
    funded = ledger.funded_entry(D(100), at - timedelta(seconds=1))
    zero = ledger.close_entry("p", "X", _settlement(D(0)), D(0), "liquidation", D(100), at)
    debit = ledger.open_entry("a", "X", D(10), D(0), D(90), at)
    entries = [ledger.parse_entry(e.id, e.document) for e in (debit, zero, funded)]

    ordered = ledger.chain_order(entries)

    assert [e.id for e in ordered] == ["funded", "close_p", "open_a"]
    assert ledger.check_chain(ordered) == []


# ---- the migration --------------------------------------------------------------------------


def test_the_migration_opens_an_old_account_at_its_balance_once() -> None:
    db = MemoryDatabase({"users/old": {"balance": 1234.56789}, "users/new": {"displayName": "N"}})
    initialize_account(db, "new", CONFIG)

    report = migrate_all(db)
    again = migrate_all(db)

    assert (report.accounts, report.migrated, again.migrated) == (2, 1, 0)
    assert journal(db, "old") == {"opening": {
        "kind": "adjustment", "amount": 1234.56789, "balanceAfter": 1234.56789,
        "currency": "USDT", "ref": "migration", "symbol": None, "at": NOW,
        "recordedAt": NOW, "note": "opening balance of the journal"}}
    assert sorted(journal(db, "new")) == ["funded"]


def test_the_migration_counts_entries_written_since_the_journal_was_deployed() -> None:
    db = MemoryDatabase({"users/u1": {"balance": 10000},
                         "users/u1/executedTriggers/e1": execution_doc()})
    db.now = NOW + timedelta(hours=1)
    settle_execution(db, "u1", "e1", CONFIG)

    assert migrate_account(db, "u1") == D(10000)
    assert migrate_account(db, "u1") is None

    opening = journal(db)["opening"]
    assert (opening["amount"], opening["balanceAfter"]) == (10000, 10000)
    assert opening["at"] == NOW + timedelta(hours=1) - timedelta(milliseconds=1)
    assert journal_sum(db) == balance(db) == D("9899.4")
