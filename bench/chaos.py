"""The chaos run: thousands of executions while everything that can fail does.

Every symbol follows the same scripted path of price plateaus. At each
plateau the driver publishes that plateau's tick again and again until the
system has reached the state an independent model of the path predicts (the
model below uses its own Decimal arithmetic, not the trading core), so every
fill is that plateau's price even when ticks are lost. Meanwhile:

- the local KuCoin drops every connection at random and stalls its pongs;
- the worker is SIGKILLed and restarted three times;
- a second worker instance runs for part of the time;
- function events are delivered twice (the handlers are called again for
  settled executions and closed positions);
- Firestore triggers are switched off for two plateaus, so no handler runs
  and the reconciler must settle those marks;
- gap recovery is on: after every restart and dropped connection the worker
  catches up from the local exchange's one-minute candles, which the model
  prices by the documented candle rule (below), from the same candles;
- the last plateau is a flash crash (a storm): one tick crosses every open
  long's stop-loss or liquidation and the deep buy triggers at once;
- at one restart, while no worker runs, the user edits take-profits so that
  the prices of that gap cross them: they must fire only on prices printed
  after the edit (DESIGN.md §3, "No hindsight").

Afterwards: every level that was crossed executed exactly once, nothing that
was not crossed executed, every balance equals the model's to the last
decimal, the ledger identity holds for every user, and every account's
journal (opened by the migration) sums to its balance with one entry per open
and close, as the audit checks it.

    scripts/bench.sh chaos [--symbols 20 --triggers 60]   (>= 2,000 executions)
"""

from __future__ import annotations

import argparse
import random
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bench.results import record, tee
from cogmora_backend import handlers
from cogmora_backend.audit import audit_account
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.journal import migrate_account
from cogmora_backend.reconcile import reconcile
from cogmora_core.money import parse_number
from tests.support.emulator import firestore_client, new_uid, set_background_triggers
from tests.support.ledger import ledger_total
from tests.support.processes import Exchange, WorkerProcess

PATH = [Decimal(p) for p in ("100", "98", "96", "94", "92", "95", "99", "103", "106", "109",
                             "105", "101", "97", "100", "83")]
#: The last plateau is a flash crash: one tick crosses at once every long's stop-loss
#: and liquidation still open, the shorts' take-profits and the deep buy triggers,
#: among them the buy-the-dip orders written (and armed) on the plateau before it.
STORM_AT = len(PATH) - 1
DIP_AT = STORM_AT - 1
SPREAD = Decimal("0.01")
FEE = Decimal("0.0006")
MMR = Decimal("0.005")
EIGHT = Decimal("0.00000001")
MARKET_AT, MANUAL_AT = 4, 8  # plateaus where market orders and manual closes happen
KILL_AT = (3, 6, 10)
SECOND_WORKER = (4, 8)
NO_TRIGGERS = (11, 12)
#: How often the driver runs the reconciler while it waits, as production's schedule does.
RECONCILE_SECONDS = 30.0
#: The restart at which take-profits are edited during the gap.
EDIT_AT = 10
#: The model moves the price in jumps from plateau to plateau and predicts every
#: live fill at the plateau's bid or ask. A fill the worker caught up from candles
#: (`origin` / `closeOrigin` `gap_recovery`) is checked against the candle rule
#: instead (`candle_open`, `candle_close`), computed here from the local exchange's
#: own candles, and the model then goes on from that fill.
WORKER_ENV: dict[str, str] = {}


def q(value: Decimal) -> Decimal:
    return value.quantize(EIGHT, rounding=ROUND_HALF_EVEN)


@dataclass
class Order:
    """One order of the model: a trigger (or market order) and the position it opens."""

    uid: str
    oid: str
    symbol: str
    side: str  # long | short
    condition: str  # below | above | market
    target: Decimal | None
    amount: Decimal
    leverage: int
    stop: Decimal
    take: Decimal
    created_at: int = 0
    #: Since when (ms, server time) the order's levels have been set: its trigger's
    #: write, then its position's creation or last edit.
    levels_since_ms: int = 0
    manual_close: bool = False
    #: The user asked to close it before plateau MANUAL_AT's first tick.
    closing_requested: bool = False
    opened_at: int | None = None
    entry: Decimal | None = None
    closed_at: int | None = None
    close_price: Decimal | None = None
    reason: str | None = None
    #: Checked against Firestore (a caught-up fill is adopted once checked).
    open_checked: bool = False
    close_checked: bool = False

    def document(self) -> dict[str, Any]:
        doc: dict[str, Any] = {
            "symbol": self.symbol, "symbolType": "futures", "condition": self.condition,
            "action": self.side, "amount": float(self.amount), "leverage": self.leverage,
            "stopLoss": float(self.stop), "takeProfit": float(self.take),
            "details": {"status": "active"}}
        if self.target is not None:
            doc["targetPrice"] = float(self.target)
        return doc

    # -- the model: its own arithmetic, from DESIGN.md section 3 -------------------------
    def size(self) -> Decimal:
        assert self.entry is not None
        return q(self.amount * self.leverage / self.entry)

    def open_cost(self) -> Decimal:
        return q(self.amount) + q(self.amount * self.leverage * FEE)

    def liquidation(self) -> Decimal:
        assert self.entry is not None
        inverse = Decimal(1) / Decimal(self.leverage)
        factor = 1 - inverse + MMR if self.side == "long" else 1 + inverse - MMR
        return q(self.entry * factor)

    def credit(self) -> Decimal:
        assert self.entry is not None and self.close_price is not None
        size = self.size()
        move = self.close_price - self.entry
        gross = size * (move if self.side == "long" else -move)
        fee = size * self.close_price * FEE
        return q(max(Decimal(0), q(self.amount) + gross - fee))


def fires(order: Order, price: Decimal) -> bool:
    if order.condition == "market":
        return True
    assert order.target is not None
    return price <= order.target if order.condition == "below" else price >= order.target


def close_reason(order: Order, price: Decimal) -> str | None:
    long = order.side == "long"
    liq = order.liquidation()
    if (price <= liq) if long else (price >= liq):
        return "liquidation"
    if (price <= order.stop) if long else (price >= order.stop):
        return "stop_loss"
    if (price >= order.take) if long else (price <= order.take):
        return "take_profit"
    return None


#: A one-minute candle of the local exchange: start (ms), open, high, low, close, count.
Candle = tuple[int, Decimal, Decimal, Decimal, Decimal, int]


def candle_open(order: Order, candles: list[Candle]) -> Decimal | None:
    """Return the documented catch-up fill of a trigger: the first candle after its levels
    were set that crosses the target fills at the target, or at its open if it opened
    beyond it."""
    assert order.target is not None
    for start, opened, high, low, _, _ in candles:
        if start < order.levels_since_ms:
            continue
        if order.condition == "below" and low <= order.target:
            return min(opened, order.target)
        if order.condition == "above" and high >= order.target:
            return max(opened, order.target)
    return None


def candle_close(order: Order, candles: list[Candle]) -> tuple[str, Decimal] | None:
    """Return the documented catch-up close of a position: (reason, price).

    In the first candle after its levels were set that reaches one: a candle that
    opened beyond a level closes at the open; else the adverse levels (stop-loss,
    liquidation) the range crossed come first, the first one the price met (long:
    the highest); else the take-profit at its level. The reason is the core's at
    that price.
    """
    long = order.side == "long"
    for start, opened, high, low, _, _ in candles:
        if start < order.levels_since_ms:
            continue
        reason = close_reason(order, opened)
        if reason is not None:
            return reason, opened
        extreme = low if long else high
        adverse = [p for p in (order.stop, order.liquidation())
                   if (extreme <= p if long else extreme >= p)]
        if adverse:
            price = max(adverse) if long else min(adverse)
            found = close_reason(order, price)
            assert found is not None
            return found, price
        if (high >= order.take) if long else (low <= order.take):
            return "take_profit", order.take
    return None


def step(orders: list[Order], plateau: int) -> None:
    """Advance the model through one plateau: opens, then closes, at that plateau's tick."""
    price = PATH[plateau]
    bid, ask = price - SPREAD, price + SPREAD
    for order in orders:
        if order.opened_at is None and order.created_at <= plateau and fires(order, price):
            order.opened_at, order.entry = plateau, ask if order.side == "long" else bid
        if order.opened_at is not None and order.closed_at is None:
            # A position the user asked to close is priced as a manual close at the next tick.
            reason = "manual" if order.closing_requested else close_reason(order, price)
            if reason is not None:
                order.closed_at, order.reason = plateau, reason
                order.close_price = bid if order.side == "long" else ask


@dataclass
class Run:
    db: Any
    exchange: Exchange
    symbols: list[str]
    orders: list[Order]
    users: list[str]
    workers: list[WorkerProcess] = field(default_factory=list)
    stop_faults: threading.Event = field(default_factory=threading.Event)
    log: list[str] = field(default_factory=list)


def make_orders(users: list[str], symbols: list[str], per_symbol: int,
                rng: random.Random) -> list[Order]:
    orders = []
    for symbol in symbols:
        for n in range(per_symbol):
            uid = users[rng.randrange(len(users))]
            long = rng.random() < 0.5
            crossed = rng.random() < 0.85
            low: float
            high: float
            if long:
                low, high = (91, 99.9) if crossed else (80, 88)
            else:
                low, high = (100.1, 109) if crossed else (112, 120)
            target = Decimal(f"{rng.uniform(low, high):.2f}")
            stop_gap = Decimal(f"{rng.uniform(1.5, 9):.2f}")
            take_gap = Decimal(f"{rng.uniform(1.5, 9):.2f}")
            orders.append(Order(
                uid=uid, oid=f"{symbol}-{n}", symbol=symbol, side="long" if long else "short",
                condition="below" if long else "above", target=target,
                amount=Decimal(f"{rng.uniform(10, 40):.2f}"), leverage=rng.randint(1, 25),
                stop=target - stop_gap if long else target + stop_gap,
                take=target + take_gap if long else target - take_gap,
                manual_close=rng.random() < 0.15))
        for n in range(max(2, per_symbol // 10)):  # market orders at plateau MARKET_AT
            long = n % 2 == 0
            price = PATH[MARKET_AT]
            orders.append(Order(
                uid=users[rng.randrange(len(users))], oid=f"{symbol}-m{n}", symbol=symbol,
                side="long" if long else "short", condition="market", target=None,
                amount=Decimal(f"{rng.uniform(10, 40):.2f}"), leverage=rng.randint(1, 10),
                stop=price - 7 if long else price + 7, take=price + 7 if long else price - 7,
                created_at=MARKET_AT))
        for n in range(max(2, per_symbol // 3)):  # buy the dip, written at plateau DIP_AT
            target = Decimal(f"{rng.uniform(84, 90):.2f}")
            orders.append(Order(
                uid=users[rng.randrange(len(users))], oid=f"{symbol}-d{n}", symbol=symbol,
                side="long", condition="below", target=target,
                amount=Decimal(f"{rng.uniform(10, 40):.2f}"), leverage=rng.randint(1, 10),
                stop=target - Decimal(f"{rng.uniform(1.5, 9):.2f}"),
                take=target + Decimal(f"{rng.uniform(1.5, 9):.2f}"), created_at=DIP_AT))
    return orders


def faults(run: Run, rng: random.Random) -> None:
    """Drop connections and stall pongs at random until told to stop."""
    while not run.stop_faults.wait(rng.uniform(1.0, 3.0)):
        if rng.random() < 0.6:
            market = rng.choice([run.exchange.spot, run.exchange.futures])
            run.exchange.call(market.drop_connections())
            run.log.append("dropped connections")
        else:
            run.exchange.futures.stall_pongs = True
            time.sleep(rng.uniform(1.0, 3.0))
            run.exchange.futures.stall_pongs = False
            run.log.append("stalled pongs")


def settled_state(run: Run) -> tuple[set[str], set[str]]:
    """Return (executed order ids, closed order ids) as Firestore has them now."""
    executed, closed = set(), set()
    for uid in run.users:
        for snapshot in run.db.collection(f"users/{uid}/executedTriggers").stream():
            if snapshot.get("status") == "filled":
                executed.add(snapshot.id)
        for snapshot in run.db.collection(f"users/{uid}/tradeHistory").stream():
            if snapshot.get("status") == "closed":
                closed.add(snapshot.id)
    return executed, closed


def deliver_twice(run: Run, rng: random.Random, executed: set[str], closed: set[str]) -> None:
    """Deliver function events again for some settled documents (must change nothing)."""
    by_id = {o.oid: o for o in run.orders}
    for oid in rng.sample(sorted(executed), min(5, len(executed))):
        order = by_id[oid]
        outcome = handlers.on_execution_created(order.uid, oid, {"status": "pending"})
        assert outcome.kind == "skipped", (oid, outcome)
    for oid in rng.sample(sorted(closed), min(5, len(closed))):
        order = by_id[oid]
        after = {"details": {"status": "closing", "closeRequest": {"reason": "manual",
                                                                  "price": 100}}}
        assert handlers.on_position_written(order.uid, oid, after).kind == "skipped"


def check_fills(run: Run, plateau: int, executed: set[str], closed: set[str]) -> None:
    """Check the prices of the fills settled at this plateau that the model has not seen.

    A live fill must be the model's; a caught-up one must be the candle rule's, and the
    model goes on from it (a position opened at its level instead of the plateau's ask
    may close at another plateau).
    """
    for order in run.orders:
        if order.oid in executed and not order.open_checked and order.opened_at == plateau:
            execution = run.db.document(
                f"users/{order.uid}/executedTriggers/{order.oid}").get().to_dict()
            if execution.get("origin") == "gap_recovery":
                price = Decimal(repr(execution["executedPrice"]))
                assert price == candle_open(order, candles_of(run, order.symbol)), (
                    order.oid, price)
                order.entry = price
                run.log.append(f"caught up {order.oid} opened at {price}")
                if order.closed_at is None:  # the model goes on from the real entry
                    reason = close_reason(order, PATH[plateau])
                    if reason is not None:
                        order.closed_at, order.reason = plateau, reason
                        order.close_price = PATH[plateau] + (
                            -SPREAD if order.side == "long" else SPREAD)
            order.open_checked = True
        if order.oid in closed and not order.close_checked and order.closed_at == plateau:
            snapshot = run.db.document(f"users/{order.uid}/tradeHistory/{order.oid}").get()
            history = snapshot.to_dict()
            if history.get("closeOrigin") == "gap_recovery":
                created = snapshot.create_time
                order.levels_since_ms = max(order.levels_since_ms, _ms(created))
                expected = candle_close(order, candles_of(run, order.symbol))
                got = (history["closeReason"], Decimal(repr(history["closePrice"])))
                assert got == expected, (order.oid, got, expected)
                order.reason, order.close_price = got
                run.log.append(f"caught up {order.oid} closed at {got[1]} ({got[0]})")
            order.close_checked = True


def candles_of(run: Run, symbol: str) -> list[Candle]:
    market = run.exchange.market(symbol)
    candles: list[Candle] = market.candles(symbol, 0, int(time.time() * 1000) + 60_000)
    return candles


def _ms(moment: Any) -> int:
    return int(moment.timestamp() * 1000)


def edit_take_profits_during_the_gap(run: Run, plateau: int, rng: random.Random) -> None:
    """While no worker runs: publish this plateau's price, then move take-profits under it.

    Each edited level is crossed by the gap's prices; it may fire only on prices printed
    after the edit (live, or a later candle), never on the gap's.
    """
    price = PATH[plateau]
    for _ in range(3):
        for symbol in run.symbols:
            run.exchange.publish(symbol, str(price), str(price - SPREAD), str(price + SPREAD))
    edited = 0
    for order in run.orders:
        if order.opened_at is None or order.closed_at is not None or order.manual_close:
            continue
        if close_reason(order, price) is not None or rng.random() < 0.5:
            continue
        take = price - 1 if order.side == "long" else price + 1
        result = run.db.document(f"users/{order.uid}/openPositions/{order.oid}").update(
            {"details.takeProfit": float(take)})
        order.take = take
        order.levels_since_ms = _ms(result.update_time)
        edited += 1
    run.log.append(f"edited {edited} take-profits during the gap at plateau {plateau}")


def drive(run: Run, rng: random.Random, timeout_per_plateau: float) -> None:
    database = FirestoreDatabase(run.db)
    for plateau, price in enumerate(PATH):
        if plateau in (MARKET_AT, MANUAL_AT):
            # Let every price go stale (maxPriceAgeSeconds is 1 in this run), so market
            # orders and manual closes fill at this plateau's first tick, as the model says.
            time.sleep(1.5)
        if plateau == MARKET_AT:
            batch = run.db.batch()
            for order in run.orders:
                if order.condition == "market":
                    batch.set(run.db.document(f"users/{order.uid}/tradeTriggers/{order.oid}"),
                              order.document())
            batch.commit()
        if plateau == MANUAL_AT:
            for order in run.orders:
                if order.manual_close and order.opened_at is not None and order.closed_at is None:
                    order.closing_requested = True
                    run.db.document(f"users/{order.uid}/openPositions/{order.oid}").update(
                        {"details.status": "closing"})
        if plateau in KILL_AT:
            run.workers[0].kill()
            run.log.append(f"killed the worker at plateau {plateau}")
            if plateau == EDIT_AT:
                assert len(run.workers) == 1  # no worker runs during this gap
                edit_take_profits_during_the_gap(run, plateau, rng)
            run.workers[0] = WorkerProcess(run.exchange, f"worker-chaos-{plateau}",
                                           **WORKER_ENV)
        if plateau == SECOND_WORKER[0]:
            run.workers.append(WorkerProcess(run.exchange, "worker-chaos-second", **WORKER_ENV))
        if plateau == SECOND_WORKER[1]:
            run.workers.pop().stop()
        if plateau == NO_TRIGGERS[0]:
            set_background_triggers(False)
            run.log.append("switched the function triggers off")
        before = {(o.oid, o.opened_at, o.closed_at) for o in run.orders}
        step(run.orders, plateau)
        if plateau == STORM_AT:
            crossed = sum((o.oid, o.opened_at, o.closed_at) not in before for o in run.orders)
            run.log.append(f"storm at plateau {plateau} ({price}): one tick crosses "
                           f"{crossed} levels")
        deadline = time.monotonic() + timeout_per_plateau
        next_reconcile = time.monotonic() + RECONCILE_SECONDS
        while True:
            for symbol in run.symbols:
                run.exchange.publish(symbol, str(price), str(price - SPREAD), str(price + SPREAD))
            if plateau in NO_TRIGGERS:  # no handler runs: the reconciler settles the marks
                reconcile(database, datetime.now(UTC) + timedelta(minutes=5))
            elif time.monotonic() >= next_reconcile:
                # As Cloud Scheduler runs reconcileMarks every minute: a handler delivery
                # the Functions emulator lost ("socket hang up") is settled from its mark.
                reconcile(database, datetime.now(UTC))
                next_reconcile = time.monotonic() + RECONCILE_SECONDS
                run.log.append(f"reconciler ran at plateau {plateau}")
            executed, closed = settled_state(run)
            check_fills(run, plateau, executed, closed)
            want_open = {o.oid for o in run.orders if o.opened_at is not None}
            want_closed = {o.oid for o in run.orders if o.closed_at is not None}
            if executed == want_open and closed == want_closed:
                break
            extra = (executed - want_open) | (closed - want_closed)
            assert not extra, f"executed what was not crossed: {sorted(extra)[:5]}"
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"plateau {plateau}: missing opens {sorted(want_open - executed)[:5]}, "
                    f"missing closes {sorted(want_closed - closed)[:5]}")
            time.sleep(0.3)
        if plateau == NO_TRIGGERS[1]:
            set_background_triggers(True)
        deliver_twice(run, rng, executed, closed)
        run.log.append(f"plateau {plateau} ({price}): {len(executed)} opened, "
                       f"{len(closed)} closed")
        if plateau == DIP_AT:
            write_dips(run)


def write_dips(run: Run) -> None:
    """Write the buy-the-dip orders and wait until every worker has armed them."""
    dips = [order for order in run.orders if order.created_at == DIP_AT]
    batch = run.db.batch()
    for order in dips:
        batch.set(run.db.document(f"users/{order.uid}/tradeTriggers/{order.oid}"),
                  order.document())
    for order, result in zip(dips, batch.commit(), strict=True):
        order.levels_since_ms = _ms(result.update_time)
    deadline = time.monotonic() + 30
    for order in dips:
        path = f"users/{order.uid}/tradeTriggers/{order.oid}"
        while not all(worker.armed(path) for worker in run.workers):
            if time.monotonic() > deadline:
                raise AssertionError(f"{path} was never armed")
            time.sleep(0.05)
    run.log.append(f"wrote {len(dips)} buy-the-dip orders before the storm")


def verify(run: Run) -> dict[str, int]:
    """Check exactness: every order, every balance, every ledger."""
    by_uid: dict[str, list[Order]] = {}
    for order in run.orders:
        by_uid.setdefault(order.uid, []).append(order)
    for uid, orders in by_uid.items():
        history = {s.id: s.to_dict() for s in
                   run.db.collection(f"users/{uid}/tradeHistory").stream()}
        positions = {s.id: s.to_dict() for s in
                     run.db.collection(f"users/{uid}/openPositions").stream()}
        executions = {s.id: s.to_dict() for s in
                      run.db.collection(f"users/{uid}/executedTriggers").stream()}
        expected = Decimal(10000)
        for order in orders:
            if order.opened_at is None:
                assert order.oid not in executions, order.oid
                continue
            assert executions[order.oid]["status"] == "filled"
            assert Decimal(repr(executions[order.oid]["executedPrice"])) == order.entry
            expected -= order.open_cost()
            if order.closed_at is None:
                assert positions[order.oid]["details"]["status"] == "open", order.oid
                continue
            record = history[order.oid]
            assert (record["status"], record["closeReason"]) == ("closed", order.reason), (
                order.oid, record.get("closeReason"), order.reason)
            assert Decimal(repr(record["closePrice"])) == order.close_price
            assert order.oid not in positions
            expected += order.credit()
        user = run.db.document(f"users/{uid}").get().to_dict()
        balance = parse_number(user["balance"])
        assert balance == expected, (uid, balance, expected)
        assert ledger_total(balance, positions.values(), history.values()) == Decimal(10000), uid
        # The journal: Σ amount = balance, the chain holds, one entry per open and close.
        audited = audit_account(FirestoreDatabase(run.db), uid, user)
        assert audited is not None and audited.problems == [], (uid, audited)
        assert audited.journal == balance and audited.entries == 1 + sum(
            (order.opened_at is not None) + (order.closed_at is not None) for order in orders)
    opens = sum(1 for o in run.orders if o.opened_at is not None)
    closes = sum(1 for o in run.orders if o.closed_at is not None)
    return {"orders": len(run.orders), "opens": opens, "closes": closes,
            "executions": opens + closes, "never crossed": len(run.orders) - opens,
            "manual closes": sum(1 for o in run.orders if o.reason == "manual"),
            "market orders": sum(1 for o in run.orders if o.condition == "market"),
            "liquidations": sum(1 for o in run.orders if o.reason == "liquidation")}


def chaos(db: Any, symbols: int, per_symbol: int, users: int = 12, seed: int = 5,
          timeout_per_plateau: float = 300.0) -> tuple[dict[str, int], list[str]]:
    """Run the whole scenario; return the counts and the log (raises on any discrepancy)."""
    rng = random.Random(seed)
    exchange = Exchange()
    run = Run(db, exchange, [f"CH{n:02d}USDTM" for n in range(symbols)], [],
              [new_uid("chaos") for _ in range(users)])
    config = db.document("config/trading")
    previous = config.get().to_dict()
    config.set({**(previous or {}), "maxPriceAgeSeconds": 1})
    try:
        for uid in run.users:
            db.document(f"users/{uid}").set({"balance": 10000, "createdAt": datetime.now(UTC)})
            # Accounts funded by hand, as before the journal: the migration opens theirs.
            migrate_account(FirestoreDatabase(db), uid)
        run.orders = make_orders(run.users, run.symbols, per_symbol, rng)
        resting = [order for order in run.orders if order.created_at == 0]
        for start in range(0, len(resting), 450):
            batch = db.batch()
            chunk = resting[start:start + 450]
            for order in chunk:
                batch.set(db.document(f"users/{order.uid}/tradeTriggers/{order.oid}"),
                          order.document())
            for order, result in zip(chunk, batch.commit(), strict=True):
                order.levels_since_ms = _ms(result.update_time)
        run.workers.append(WorkerProcess(exchange, "worker-chaos", **WORKER_ENV))
        thread = threading.Thread(target=faults, args=(run, random.Random(seed + 1)),
                                  daemon=True)
        thread.start()
        try:
            drive(run, rng, timeout_per_plateau)
        finally:
            run.stop_faults.set()
            thread.join(timeout=10)
            set_background_triggers(True)
        time.sleep(1)  # a late duplicate would show itself now
        counts = verify(run)
        counts["caught up from candles"] = sum(line.startswith("caught up") for line in run.log)
        return counts, run.log
    finally:
        for worker in run.workers:
            worker.stop()
        exchange.close()
        if previous is None:
            config.delete()
        else:
            config.set(previous)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--symbols", type=int, default=20)
    parser.add_argument("--triggers", type=int, default=60, help="resting triggers per symbol")
    args = parser.parse_args()
    started = time.perf_counter()
    with tee() as out:
        counts, log = chaos(firestore_client(), args.symbols, args.triggers)
        for line in log:
            print("  " + line)
        seconds = time.perf_counter() - started
        print(f"chaos run passed in {seconds:.0f} s: " +
              ", ".join(f"{k} {v}" for k, v in counts.items()))
    record("chaos", {**counts, "seconds": seconds}, out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
