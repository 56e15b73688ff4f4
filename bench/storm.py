"""The flash crash: thousands of levels crossed by one tick, marked and settled exactly once.

On the emulators (Firestore + the functions) with the local exchange and
`python -m worker`: N active `below` triggers and M open long positions
(stop-losses and liquidations) are spread over U users plus one whale whose
levels are all liquidations, every level between 51 and 99 on one futures
symbol. The worker arms them all, then one tick at 50 crosses every one.
The crash tick is published again every 2 s until all are marked (the same
price: a level left armed after a failed mark fires on it, as it would on
the exchange's next print); times run from the first.

The driver runs the reconciler every minute, as production's schedule does
(the Functions emulator runs no scheduled function). Before the crash, the
functions settle one trade outside the storm, so that their runtimes have
started, as on a running system (`--cold` skips it).

Printed: time to the first mark and until all are marked, until all are
settled (each time as its commit wrote it on the documents, from the crash
tick's publication), marks/s and settlements/s, and
the time to mark every position vs every trigger, with the liquidations,
stop-losses and triggers apart (urgency order), plus the subscribe and
unsubscribe messages the exchange received during the storm.

It fails loudly when any level executed twice or not at all, or when any
balance differs from an independent model of the storm (its own Decimal
arithmetic below, not the trading core).

    scripts/bench.sh storm --levels 1200          (100 users × 10 + a 200-level whale)
    scripts/bench.sh storm --levels 10000         (1,000 users + a 500-level whale)
    scripts/bench.sh storm --levels 1200 --cold   (the functions start during the storm)
"""

from __future__ import annotations

import argparse
import signal
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

from bench.results import record, tee
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_backend.reconcile import reconcile
from cogmora_core.money import parse_number
from tests.support.builders import execution_doc
from tests.support.emulator import firestore_client, new_uid, set_background_triggers, wait_for
from tests.support.processes import Exchange, WorkerProcess

SYMBOL = "STORMUSDTM"
BEFORE = Decimal("100")
CRASH = Decimal("50")
SPREAD = Decimal("0.01")
BID, ASK = CRASH - SPREAD, CRASH + SPREAD
FEE = Decimal("0.0006")
MMR = Decimal("0.005")
MONEY = Decimal("0.00000001")
PRICE = Decimal("0.000000000001")
TRIGGER, STOP, LIQUIDATION = "trigger", "stop_loss", "liquidation"
#: Trigger orders: 10 USDT margin at 2x; positions: 100 USDT margin.
TRIGGER_AMOUNT, TRIGGER_LEVERAGE = Decimal(10), 2
MARGIN = Decimal(100)
USER_BALANCE, WHALE_BALANCE = Decimal(100_000), Decimal(1_000_000)
#: How often the driver runs the reconciler while it waits (production's schedule).
RECONCILE_SECONDS = 60.0
#: How often, at most, the driver looks up the levels not settled yet (the figures do not
#: depend on it: they are the commit times written on the documents).
POLL_SECONDS = 0.25


def q(value: Decimal, places: Decimal = MONEY) -> Decimal:
    return value.quantize(places, rounding=ROUND_HALF_EVEN)


@dataclass
class Level:
    """One crossed level of the model: a trigger or a seeded position, and what it must do."""

    uid: str
    doc_id: str
    kind: str
    level: Decimal
    #: Positions: entry price, leverage and size.
    entry: Decimal = Decimal(0)
    leverage: int = 1
    size: Decimal = Decimal(0)

    @property
    def depth(self) -> Decimal:
        return self.level - CRASH

    # -- the model: its own arithmetic (DESIGN.md §3), not the trading core's ------------
    def balance_change(self) -> Decimal:
        """Return what executing this level does to its owner's balance."""
        if self.kind == TRIGGER:  # a long opens at the ask: margin + fee debited
            return -(q(TRIGGER_AMOUNT) + q(TRIGGER_AMOUNT * TRIGGER_LEVERAGE * FEE))
        # a long closes at the bid: isolated margin + gross − fee, never below zero
        gross = self.size * (BID - self.entry)
        fee = self.size * BID * FEE
        return q(max(Decimal(0), MARGIN + gross - fee))

    def trigger_document(self) -> dict[str, Any]:
        return {"symbol": SYMBOL, "symbolType": "futures", "condition": "below",
                "targetPrice": float(self.level), "action": "long",
                "amount": int(TRIGGER_AMOUNT), "leverage": TRIGGER_LEVERAGE,
                "details": {"status": "active"}}

    def position_document(self, opened_at: Any) -> dict[str, Any]:
        details: dict[str, Any] = {"status": "open"}
        if self.kind == STOP:
            details["stopLoss"] = float(self.level)
        liquidation = q(self.entry * (1 - Decimal(1) / self.leverage + MMR), PRICE)
        return {"symbol": SYMBOL, "symbolType": "futures", "positionType": "long",
                "size": float(self.size), "averageEntryPrice": float(self.entry),
                "leverage": self.leverage, "margin": int(MARGIN),
                "openFee": float(q(MARGIN * self.leverage * FEE)),
                "liquidationPrice": float(liquidation), "sourceTriggerId": self.doc_id,
                "openedAt": opened_at, "details": details}


def plan(levels: int, users: int, whale: int, seed_prefix: str = "storm") -> list[Level]:
    """Return the storm's levels: the whale's liquidations, then the others' mix.

    Of the others' levels, half are triggers, a quarter stop-losses (1x, liquidation
    at 0.5, never crossed) and a quarter liquidations (10x, entry from 60 to 109:
    liquidation at 0.905 × entry). Levels spread evenly over 51..99.
    """
    whale = min(whale, levels)
    others = levels - whale
    uids = [new_uid(f"{seed_prefix}-{n}") for n in range(users)]
    whale_uid = new_uid(f"{seed_prefix}-whale")
    found: list[Level] = []

    def spread(i: int, n: int) -> Decimal:
        return Decimal(5100 + (i * 4800) // max(1, n)) / 100

    for i in range(whale):
        entry = Decimal(60) + Decimal((i * 4900) // max(1, whale)) / 100
        found.append(_liquidation(whale_uid, f"w{i}", entry))
    for i in range(others):
        uid = uids[i % users] if users else whale_uid
        level = spread(i, others)
        if i % 2 == 0:
            found.append(Level(uid, f"t{i}", TRIGGER, level))
        elif i % 4 == 1:
            found.append(Level(uid, f"s{i}", STOP, level, entry=Decimal(100), leverage=1,
                               size=Decimal(1)))
        else:
            entry = Decimal(60) + Decimal((i * 4900) // max(1, others)) / 100
            found.append(_liquidation(uid, f"l{i}", entry))
    return found


def _liquidation(uid: str, doc_id: str, entry: Decimal) -> Level:
    level = q(entry * (1 - Decimal(1) / 10 + MMR), PRICE)
    return Level(uid, doc_id, LIQUIDATION, level, entry=entry, leverage=10,
                 size=q(MARGIN * 10 / entry))


@dataclass
class Progress:
    """Which levels are marked and settled, and when, from the documents themselves.

    While the storm runs, `poll` looks up the documents of the levels not yet
    settled by key (`read_many`, one `BatchGetDocuments`; no query, no listener: on the
    emulator every listener of a collection costs each commit to it, which
    measured 3-5 s of a 1,200-level storm). A position is marked once `closing`
    and settled once deleted; a trigger is marked once its execution exists and
    settled once that is `filled` (or rejected). The times are those the commits
    wrote, read when all is settled (`times`): `executedAt` and `settledAt` of an
    execution, `closeRequestedAt` and `closedAt` of a closed position's history.
    """

    levels: list[Level]
    marked: set[str] = field(default_factory=set)
    settled: set[str] = field(default_factory=set)
    rejected: dict[str, Any] = field(default_factory=dict)

    @staticmethod
    def key(level: Level) -> str:
        return f"{level.uid}/{level.doc_id}"

    @staticmethod
    def path(level: Level) -> str:
        collection = "executedTriggers" if level.kind == TRIGGER else "openPositions"
        return f"users/{level.uid}/{collection}/{level.doc_id}"

    def poll(self, db: Any) -> None:
        """Look up every level not settled yet and note what changed."""
        waiting = [level for level in self.levels if self.key(level) not in self.settled]
        found = FirestoreDatabase(db).read_many([self.path(level) for level in waiting])
        for level, snapshot in zip(waiting, found, strict=True):
            key, data = self.key(level), None if snapshot is None else snapshot.data
            if level.kind == TRIGGER:
                if data is None:
                    continue
                self.marked.add(key)
                status = data.get("status")
                if status != "pending":
                    self.settled.add(key)
                    if status != "filled":
                        self.rejected[key] = data
            elif data is None:
                self.marked.add(key)
                self.settled.add(key)
            else:
                details = data.get("details") or {}
                if details.get("status") == "closing":
                    self.marked.add(key)
                if details.get("settlementError"):
                    self.settled.add(key)
                    self.rejected[key] = data

    def times(self, db: Any) -> tuple[dict[str, float], dict[str, float]]:
        """Return when each level's mark and its settlement were committed (epoch s)."""
        paths = {self.key(level): self.path(level) if level.kind == TRIGGER
                 else f"users/{level.uid}/tradeHistory/{level.doc_id}"
                 for level in self.levels}
        found = {snapshot.path: snapshot.data for snapshot in
                 FirestoreDatabase(db).read_many(list(paths.values())) if snapshot is not None}
        marked: dict[str, float] = {}
        settled: dict[str, float] = {}
        for level in self.levels:
            key = self.key(level)
            data = found.get(paths[key], {})
            mark, settle = (("executedAt", "settledAt") if level.kind == TRIGGER
                            else ("closeRequestedAt", "closedAt"))
            if isinstance(data.get(mark), datetime):
                marked[key] = data[mark].timestamp()
            if isinstance(data.get(settle), datetime):
                settled[key] = data[settle].timestamp()
        missing = [key for key in paths if key not in marked or key not in settled]
        if missing:
            raise AssertionError(f"{len(missing)} levels without their commit times: "
                                 f"{missing[:5]}")
        return marked, settled


class Reconciler:
    """Runs the reconciler every `RECONCILE_SECONDS` in the background, as its schedule would.

    The Functions emulator does not run scheduled functions: without this, a mark
    whose handler failed (the emulator drops a few under load) would never settle.
    """

    def __init__(self, db: Any) -> None:
        self.database = FirestoreDatabase(db)
        self.started = time.monotonic()
        self.thread: threading.Thread | None = None
        self.settled: dict[str, int] = {}

    def maybe_run(self) -> None:
        if self.thread is not None and self.thread.is_alive():
            return
        if time.monotonic() - self.started < RECONCILE_SECONDS:
            return
        self.started = time.monotonic()
        self.thread = threading.Thread(target=self._run, daemon=True)
        self.thread.start()

    def _run(self) -> None:
        try:
            report = reconcile(self.database, datetime.now(UTC))
        except Exception as error:  # the emulator under load: the next run tries again
            print(f"reconciler run failed: {error!r}", file=sys.stderr)
            return
        for kind, count in {**report.executions, **report.closes}.items():
            self.settled[kind] = self.settled.get(kind, 0) + count

    def stop(self) -> None:
        if self.thread is not None:
            self.thread.join(timeout=120)


def seed(db: Any, levels: list[Level]) -> None:
    """Write the users, the triggers and the positions (500 writes per batch)."""
    from google.cloud import firestore

    owners: dict[str, list[Level]] = {}
    for level in levels:
        owners.setdefault(level.uid, []).append(level)
    writes: list[tuple[str, dict[str, Any]]] = [
        ("config/limits", {"maxActiveTriggers": 100_000, "maxOpenPositions": 100_000})]
    for uid, own in owners.items():
        balance = WHALE_BALANCE if uid.split("-")[1] == "whale" else USER_BALANCE
        writes.append((f"users/{uid}", {
            "balance": int(balance), "createdAt": firestore.SERVER_TIMESTAMP,
            "openPositionCount": sum(level.kind != TRIGGER for level in own)}))
    for level in levels:
        if level.kind == TRIGGER:
            writes.append((f"users/{level.uid}/tradeTriggers/{level.doc_id}",
                           level.trigger_document()))
        else:
            writes.append((f"users/{level.uid}/openPositions/{level.doc_id}",
                           level.position_document(firestore.SERVER_TIMESTAMP)))
    for start in range(0, len(writes), 500):
        batch = db.batch()
        for path, data in writes[start:start + 500]:
            batch.set(db.document(path), data)
        batch.commit()


def balances(levels: list[Level]) -> dict[str, Decimal]:
    """Return the model's balance of every user after the storm."""
    expected: dict[str, Decimal] = {}
    for level in levels:
        start = WHALE_BALANCE if level.uid.split("-")[1] == "whale" else USER_BALANCE
        expected[level.uid] = expected.get(level.uid, start) + level.balance_change()
    return expected


def verify(db: Any, levels: list[Level]) -> list[str]:
    """Return every way the database differs from the model (empty when exact)."""
    problems: list[str] = []
    uids = sorted({level.uid for level in levels})
    users = {snap.id: snap.to_dict() or {} for snap in
             db.get_all([db.document(f"users/{uid}") for uid in uids])}
    for uid, balance in balances(levels).items():
        got = parse_number(users.get(uid, {}).get("balance"))
        if got != q(balance):
            problems.append(f"users/{uid}: balance {got} ≠ model {q(balance)}")
    by_user: dict[str, list[Level]] = {}
    for level in levels:
        by_user.setdefault(level.uid, []).append(level)
    found = {name: _group(db, name, set(uids)) for name in
             ("executedTriggers", "tradeTriggers", "openPositions", "tradeHistory")}
    for uid in uids:
        own = by_user[uid]
        triggers = {lv.doc_id for lv in own if lv.kind == TRIGGER}
        seeded = {lv.doc_id for lv in own if lv.kind != TRIGGER}
        executions = found["executedTriggers"].get(uid, {})
        left_triggers = set(found["tradeTriggers"].get(uid, {}))
        positions = found["openPositions"].get(uid, {})
        history = found["tradeHistory"].get(uid, {})
        if set(executions) != triggers:
            problems.append(f"users/{uid}: executions {sorted(set(executions) ^ triggers)[:5]}"
                            " differ from its triggers")
        for doc_id, execution in executions.items():
            if execution.get("status") != "filled" or \
                    parse_number(execution.get("executedPrice")) != ASK:
                problems.append(f"users/{uid}/executedTriggers/{doc_id}: {execution}")
        if left_triggers:
            problems.append(f"users/{uid}: triggers left {sorted(left_triggers)[:5]}")
        if set(positions) != triggers:
            problems.append(f"users/{uid}: open positions {sorted(positions)[:5]} are not "
                            "exactly one per trigger")
        for lv in own:
            record = history.get(lv.doc_id)
            if lv.kind == TRIGGER:
                if record is None or record.get("status") != "open":
                    problems.append(f"users/{uid}/tradeHistory/{lv.doc_id}: {record}")
                continue
            reason = "liquidation" if lv.kind == LIQUIDATION else "stop_loss"
            if record is None or record.get("status") != "closed" \
                    or record.get("closeReason") != reason \
                    or parse_number(record.get("closePrice")) != BID:
                problems.append(f"users/{uid}/tradeHistory/{lv.doc_id}: {record}")
        if set(history) != triggers | seeded:
            problems.append(f"users/{uid}: history {sorted(set(history) ^ (triggers | seeded))}")
        count = users.get(uid, {}).get("openPositionCount")
        if count != len(triggers):
            problems.append(f"users/{uid}: openPositionCount {count} ≠ {len(triggers)}")
    return problems


def _group(db: Any, collection: str, uids: set[str]) -> dict[str, dict[str, Any]]:
    """Return {uid: {id: data}} of every `collection` document of the users `uids`."""
    found: dict[str, dict[str, Any]] = {}
    for snapshot in db.collection_group(collection).stream():
        uid = snapshot.reference.path.split("/")[1]
        if uid in uids:
            found.setdefault(uid, {})[snapshot.id] = snapshot.to_dict()
    return found


@dataclass
class Figures:
    levels: int
    users: int
    whale: int
    first_mark: float
    all_marked: float
    all_settled: float
    by_kind: dict[str, float]
    subscription_messages: int
    #: Marks the reconciler settled before their handler did (or because it failed), by outcome.
    reconciled: dict[str, int] = field(default_factory=dict)
    #: The worker's own tick → first mark committed (its histogram's bucket bound, s).
    internal_first_mark: float | None = None
    #: Blind marks whose document had changed (marked through a transaction instead).
    stale_marks: int = 0
    #: Seconds until half, 90 % and 99 % of the levels were settled, and the whale's.
    settled_at: dict[str, float] = field(default_factory=dict)
    #: Seconds the functions took to settle one trade before the storm (None: run cold).
    warm_up: float | None = None

    @property
    def marks_per_second(self) -> float:
        return self.levels / self.all_marked

    @property
    def settlements_per_second(self) -> float:
        return self.levels / self.all_settled

    def as_dict(self) -> dict[str, Any]:
        return {"levels": self.levels, "users": self.users, "whale": self.whale,
                "first_mark_ms": self.first_mark * 1000, "all_marked_s": self.all_marked,
                "all_settled_s": self.all_settled, "marks_per_s": self.marks_per_second,
                "settlements_per_s": self.settlements_per_second,
                **{f"marked_{kind}_s": value for kind, value in self.by_kind.items()},
                "subscription_messages": self.subscription_messages,
                "reconciled": sum(self.reconciled.values()),
                **{f"settled_{name}_s": value for name, value in self.settled_at.items()},
                "internal_first_mark_le_ms": None if self.internal_first_mark is None
                else self.internal_first_mark * 1000,
                "stale_marks": self.stale_marks, "warm_up_s": self.warm_up}


def warm_up(db: Any, timeout: float = 120.0) -> float:
    """Have the functions settle one trade before the storm, as in a running system.

    A new user (`initializeAccount` funds it), one execution (`openPositionHandler`
    opens its position) and that position priced to close (`closePositionHandler`
    settles it), outside the storm's model. Their first events start the functions'
    runtimes and Firestore clients, and run the emulator's first transactions: about
    1.4 s on this machine, which a storm on a running system does not pay.
    Returns the seconds it took.
    """
    from google.cloud import firestore

    started = time.perf_counter()
    user = db.document(f"users/{new_uid('storm-warmup')}")
    user.set({"displayName": "warm-up"})
    wait_for(lambda: "balance" in (user.get().to_dict() or {}), timeout)
    execution = user.collection("executedTriggers").document("warm")
    execution.set({**execution_doc(triggerId="warm"), "executedAt": firestore.SERVER_TIMESTAMP})
    wait_for(lambda: (execution.get().to_dict() or {}).get("status") == "filled", timeout)
    position = user.collection("openPositions").document("warm")
    position.update({"details.status": "closing", "details.closeRequest": {
        "reason": "manual", "price": 60000, "at": firestore.SERVER_TIMESTAMP,
        "source": "bench"}})
    wait_for(lambda: not position.get().exists, timeout)
    return time.perf_counter() - started


def storm(db: Any, exchange: Exchange, levels: int, users: int, whale: int,
          timeout: float = 1800.0, republish: float = 2.0,
          worker_env: dict[str, str] | None = None,
          warm: bool = True) -> tuple[Figures, list[Level]]:
    """Run one storm and check it; raise AssertionError on anything lost, doubled or off.

    With `warm`, the functions settle one trade first (`warm_up`). Returns the
    figures and the levels (to check them again after more events).
    """
    planned = plan(levels, users, whale)
    limits = db.document("config/limits")
    previous = limits.get()
    set_background_triggers(False)  # seeding fires nothing that matters: skip the events
    try:
        seed(db, planned)
    finally:
        set_background_triggers(True)
    warmed = warm_up(db) if warm else None
    try:
        figures, levels_ = _storm(db, exchange, planned, users, whale, timeout, republish,
                                  worker_env)
        figures.warm_up = warmed
        return figures, levels_
    finally:  # the limits as they were (other runs share the emulator)
        if previous.exists:
            limits.set(previous.to_dict())
        else:
            limits.delete()


def _storm(db: Any, exchange: Exchange, planned: list[Level], users: int, whale: int,
           timeout: float, republish: float,
           worker_env: dict[str, str] | None) -> tuple[Figures, list[Level]]:
    levels = len(planned)
    progress = Progress(planned)
    worker = WorkerProcess(exchange, "worker-storm", **(worker_env or {}))
    try:
        # Subscribed once the quiet price reaches a connection.
        deadline = time.monotonic() + 60
        while exchange.publish(SYMBOL, str(BEFORE), str(BEFORE - SPREAD),
                               str(BEFORE + SPREAD)) < 1:
            if time.monotonic() > deadline:
                raise AssertionError(f"the worker never subscribed {SYMBOL}")
            time.sleep(0.05)
        time.sleep(0.5)  # the quiet price applied
        armed = worker.metric("cogmora_armed_documents")
        assert armed >= len(planned), f"only {armed} of {len(planned)} documents armed"
        began = time.monotonic()
        progress.poll(db)
        if progress.marked:
            raise AssertionError(f"{len(progress.marked)} levels marked before the crash")
        # Quiet again before the crash: that look (1.1 s for 10,000 levels) leaves the
        # emulator's JVM work to finish, and the crash is not timed against it.
        time.sleep(max(0.5, time.monotonic() - began))
        subscriptions_before = len(exchange.futures.subscribe_messages)
        started = time.time()  # the clock the emulator stamps the commits with
        crash = (SYMBOL, str(CRASH), str(BID), str(ASK))
        delivered = exchange.publish(*crash)
        last_publish = time.monotonic()
        deadline = time.monotonic() + timeout
        reconciler = Reconciler(db)
        next_poll = time.monotonic() + 1.0  # not in the way of the first marks
        while len(progress.settled) < len(planned):
            time.sleep(0.05)
            reconciler.maybe_run()
            if time.monotonic() >= next_poll:
                began = time.monotonic()
                progress.poll(db)
                # At most a fifth of the time looking (10,000 lookups take a while).
                next_poll = time.monotonic() + max(POLL_SECONDS,
                                                   4 * (time.monotonic() - began))
            if time.monotonic() > deadline:
                raise AssertionError(
                    f"after {timeout} s: {len(progress.marked)} marked, "
                    f"{len(progress.settled)} settled of {len(planned)}")
            if republish and time.monotonic() - last_publish >= republish \
                    and len(progress.marked) < len(planned):
                exchange.publish(*crash)
                last_publish = time.monotonic()
        reconciler.stop()
        subscription_messages = len(exchange.futures.subscribe_messages) - subscriptions_before
        assert delivered >= 1, "the crash tick reached no connection"
        if progress.rejected:
            raise AssertionError(f"{len(progress.rejected)} levels rejected: "
                                 f"{list(progress.rejected.items())[:3]}")
        marked, settled = progress.times(db)
        by_kind: dict[str, float] = {}
        for kind in (LIQUIDATION, STOP, TRIGGER):
            keys = [f"{lv.uid}/{lv.doc_id}" for lv in planned if lv.kind == kind]
            if keys:
                by_kind[kind] = max(marked[k] for k in keys) - started
        positions = [f"{lv.uid}/{lv.doc_id}" for lv in planned if lv.kind != TRIGGER]
        if positions:
            by_kind["positions"] = max(marked[k] for k in positions) - started
        internal_first, stale = _worker_figures(worker)
        times = sorted(settled.values())
        settled_at = {f"p{int(share * 100)}": times[int(share * (len(times) - 1))] - started
                      for share in (0.5, 0.9, 0.99)}
        whales = [settled[f"{lv.uid}/{lv.doc_id}"] for lv in planned
                  if lv.uid.split("-")[1] == "whale"]
        if whales:
            settled_at["whale"] = max(whales) - started
        figures = Figures(
            levels=len(planned), users=users, whale=min(whale, levels),
            first_mark=min(marked.values()) - started,
            all_marked=max(marked.values()) - started,
            all_settled=max(settled.values()) - started,
            by_kind=by_kind, subscription_messages=subscription_messages,
            reconciled=dict(reconciler.settled),
            internal_first_mark=internal_first, stale_marks=stale, settled_at=settled_at)
    finally:
        worker.stop()
    problems = verify(db, planned)
    if problems:
        raise AssertionError(f"{len(problems)} differences from the model:\n"
                             + "\n".join(problems[:40]))
    return figures, planned


def _worker_figures(worker: WorkerProcess) -> tuple[float | None, int]:
    """Return the worker's fastest tick → mark (a bucket bound, s) and its stale marks."""
    import httpx

    text = httpx.get(f"{worker.url}/metrics", timeout=5).text
    first = None
    for line in text.splitlines():
        if line.startswith("cogmora_tick_to_mark_seconds_bucket") and float(line.split()[-1]):
            bound = float(line.split('le="')[1].split('"')[0])
            first = bound if first is None else min(first, bound)
    stale = worker.metric("cogmora_mark_outcomes_total", outcome="stale")
    return first, int(stale)


def table(figures: Figures, label: str) -> None:
    kinds = figures.by_kind
    print(f"flash crash on the emulators ({label}): {figures.levels:,} levels over "
          f"{figures.users:,} users + a {figures.whale}-level whale, one tick")
    print(f"  first mark           {figures.first_mark * 1000:>10.0f} ms   (the worker's own "
          f"tick → commit: ≤ {(figures.internal_first_mark or 0) * 1000:.0f} ms, bucket bound)")
    print(f"  all marked           {figures.all_marked:>10.2f} s   "
          f"({figures.marks_per_second:,.0f} marks/s)")
    print(f"  all settled          {figures.all_settled:>10.2f} s   "
          f"({figures.settlements_per_second:,.0f} settlements/s)")
    if figures.settled_at:
        print("  settled: " + ", ".join(f"{name} {value:.2f} s"
                                       for name, value in figures.settled_at.items())
              + " (p50, p90, p99 of the levels; the whale's last)")
    for name, key in (("all liquidations", LIQUIDATION), ("all stop-losses", STOP),
                      ("all positions", "positions"), ("all triggers", TRIGGER)):
        if key in kinds:
            print(f"  {name + ' marked':<21}{kinds[key]:>10.2f} s")
    print(f"  subscribe/unsubscribe messages during the storm: "
          f"{figures.subscription_messages}")
    print(f"  blind marks whose document had changed (marked by a transaction): "
          f"{figures.stale_marks}")
    print("  settled by the reconciler (before their handler, or after it failed): "
          f"{sum(figures.reconciled.values())}")
    print("  functions before the storm: " + (
        "cold (their first events start them)" if figures.warm_up is None
        else f"warmed by one trade outside the storm ({figures.warm_up:.2f} s)"))
    print("  exactly once, balances equal to the model: checked")


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--levels", type=int, default=1200)
    parser.add_argument("--users", type=int, default=None,
                        help="users besides the whale (default: 100 for ≤ 1,200 levels, "
                             "else levels / 10)")
    parser.add_argument("--whale", type=int, default=None,
                        help="the whale's liquidations (default: 200, 500 above 1,200 levels)")
    parser.add_argument("--timeout", type=float, default=1800.0)
    parser.add_argument("--cold", action="store_true",
                        help="no warm-up trade: the functions start during the storm")
    parser.add_argument("--label", default="after",
                        help="recorded as storm_<label>_<levels> (before / after)")
    args = parser.parse_args()
    users = args.users if args.users is not None else (
        100 if args.levels <= 1200 else args.levels // 10)
    whale = args.whale if args.whale is not None else (200 if args.levels <= 1200 else 500)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(143))  # stop the worker on the way out
    db = firestore_client()
    exchange = Exchange()
    try:
        with tee() as out:
            figures, _ = storm(db, exchange, args.levels, users, whale, args.timeout,
                               warm=not args.cold)
            table(figures, args.label)
    finally:
        exchange.close()
    record(f"storm_{args.label}_{args.levels}", figures.as_dict(), out.getvalue())
    return 0


if __name__ == "__main__":
    sys.exit(main())
