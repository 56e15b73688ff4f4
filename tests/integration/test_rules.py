"""Security rules on the Firestore emulator, over REST with real per-user tokens.

Every case starts from a fresh account written by the backend (admin client),
then does one thing as the app would: legitimate actions are allowed (200),
hostile ones denied (403).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import new_uid, set_background_triggers
from tests.support.null_cases import NULL_CASES
from tests.support.rest import AppClient, load_rules

ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 1, 1, tzinfo=UTC)
LATER = datetime(2026, 6, 1, tzinfo=UTC)

TRIGGER = {"symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below",
           "targetPrice": 60000, "action": "long", "amount": 100, "leverage": 3,
           "stopLoss": 58000, "takeProfit": 65000, "details": {"status": "active"}}
SPOT_TRIGGER = {"symbol": "BTC-USDT", "symbolType": "spot", "condition": "above",
                "targetPrice": 90000, "action": "buy", "amount": 250.5,
                "details": {"status": "active"}}
POSITION = {"symbol": "XBTUSDTM", "symbolType": "futures", "positionType": "long",
            "size": 0.01, "averageEntryPrice": 60000, "leverage": 3, "margin": 200,
            "openFee": 0.36, "liquidationPrice": 40300, "openedAt": T0,
            "sourceTriggerId": "p1",
            "details": {"status": "open", "stopLoss": 58000, "takeProfit": 65000}}


@pytest.fixture(scope="module", autouse=True)
def rules(db: Any) -> Iterator[None]:
    load_rules((ROOT / "firestore.rules").read_text())
    set_background_triggers(False)  # these tests are about rules, not settlement
    yield
    set_background_triggers(True)


def world(db: Any, uid: str) -> None:
    """Write a complete account as the backend would."""
    batch = db.batch()
    batch.set(db.document(f"users/{uid}"), {
        "displayName": "Ada", "balance": 10000, "createdAt": T0,
        "automation": {
            "ai": {"enabled": False, "intervalMinutes": 60, "nextRun": T0, "lastRun": T0,
                   "lastStatus": "ok", "lastError": None, "autoExecute": False,
                   "maxRiskPercent": 1, "lastPlanId": "a1"},
            "watchlist": {"enabled": False, "intervalMinutes": 15, "nextRun": T0}}})
    batch.set(db.document(f"users/{uid}/tradeTriggers/t1"), TRIGGER)
    batch.set(db.document(f"users/{uid}/tradeTriggers/tc"),
              {**TRIGGER, "details": {"status": "cancelled"}})
    batch.set(db.document(f"users/{uid}/tradeTriggers/ai"),
              {**TRIGGER, "source": "ai", "planId": "a1", "rationale": "breakout"})
    batch.set(db.document(f"users/{uid}/openPositions/p1"), POSITION)
    batch.set(db.document(f"users/{uid}/openPositions/pc"),
              {**POSITION, "details": {"status": "closing"}})
    batch.set(db.document(f"users/{uid}/executedTriggers/e0"),
              {**TRIGGER, "executedPrice": 59990, "status": "filled", "positionId": "p1"})
    batch.set(db.document(f"users/{uid}/tradeHistory/h1"),
              {"positionId": "h1", "status": "open", "margin": 200})
    batch.set(db.document(f"users/{uid}/aiPlans/a1"), {"planId": "a1", "proposals": []})
    batch.set(db.document(f"users/{uid}/ledger/funded"), {
        "kind": "funded", "amount": 10000, "balanceAfter": 10000, "currency": "USDT",
        "ref": "initializeAccount", "symbol": None, "at": T0})
    batch.set(db.document(f"users/{uid}/watchlist/BTC-USDT"),
              {"symbol": "BTC-USDT", "price": 87956.1})
    batch.set(db.document(f"users/{uid}/idempotencyKeys/k1"), {
        "requestHash": "h", "status": 201, "response": "{}", "createdAt": T0,
        "expiresAt": LATER})
    batch.set(db.document(f"users/{uid}/apiUsage/window"), {
        "windowStart": T0, "count": 1, "expiresAt": LATER})
    batch.set(db.document("config/trading"), {"spotTakerFee": 0.001})
    batch.set(db.document("config/limits"), {"apiRequestsPerMinute": 120})
    batch.commit()


@dataclass(frozen=True)
class Case:
    name: str
    act: Callable[[AppClient, str], int]
    actor: str = "self"  # self, other (another signed-in user) or anon


def trig(**changes: Any) -> dict[str, Any]:
    return {k: v for k, v in {**TRIGGER, **changes}.items() if v is not DROP}


DROP = object()
U = "users/{uid}"

LEGITIMATE = [
    Case("read own account", lambda c, u: c.get(f"users/{u}")),
    Case("read own trigger", lambda c, u: c.get(f"users/{u}/tradeTriggers/t1")),
    Case("read own position", lambda c, u: c.get(f"users/{u}/openPositions/p1")),
    Case("read own execution", lambda c, u: c.get(f"users/{u}/executedTriggers/e0")),
    Case("read own history", lambda c, u: c.get(f"users/{u}/tradeHistory/h1")),
    Case("read own ai plan", lambda c, u: c.get(f"users/{u}/aiPlans/a1")),
    Case("read own journal entry", lambda c, u: c.get(f"users/{u}/ledger/funded")),
    Case("read own watchlist", lambda c, u: c.get(f"users/{u}/watchlist/BTC-USDT")),
    Case("read config", lambda c, u: c.get("config/trading")),
    Case("read the limits", lambda c, u: c.get("config/limits")),
    Case("create futures trigger", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig())),
    Case("create spot trigger", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                      SPOT_TRIGGER)),
    Case("create market order", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(
        condition="market", targetPrice=DROP, stopLoss=DROP, takeProfit=DROP))),
    Case("create short trigger", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(
        action="short", condition="above", targetPrice=70000, stopLoss=72000,
        takeProfit=65000))),
    Case("create 100x trigger", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                      trig(leverage=100))),
    Case("replace active trigger", lambda c, u: c.replace(f"users/{u}/tradeTriggers/t1",
                                                          trig(targetPrice=59000))),
    Case("edit trigger amount", lambda c, u: c.update(f"users/{u}/tradeTriggers/t1",
                                                      {"amount": 150.25})),
    Case("edit an ai trigger's level", lambda c, u: c.update(f"users/{u}/tradeTriggers/ai",
                                                             {"takeProfit": 66000})),
    Case("cancel trigger", lambda c, u: c.update(f"users/{u}/tradeTriggers/t1",
                                                 {"details.status": "cancelled"})),
    Case("delete trigger", lambda c, u: c.delete(f"users/{u}/tradeTriggers/t1")),
    Case("move stop-loss", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                 {"details.stopLoss": 59000})),
    Case("move take-profit", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                   {"details.takeProfit": 70000})),
    Case("remove stop-loss", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                   {"details.stopLoss": None})),
    Case("ask to close", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                               {"details.status": "closing"})),
    Case("create trigger with a trailing stop", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(trailingStop={"percent": 2.5,
                                                         "activationPrice": 61000}))),
    Case("create an OCO pair in one batch", lambda c, u: c.create_all({
        f"users/{u}/tradeTriggers/oa": trig(ocoTriggerId="ob"),
        f"users/{u}/tradeTriggers/ob": trig(condition="above", targetPrice=62000,
                                            stopLoss=DROP, takeProfit=DROP,
                                            ocoTriggerId="oa")})),
    Case("set a trailing stop", lambda c, u: c.update(f"users/{u}/openPositions/p1", {
        "details.trailingStop": {"distance": 500}})),
    Case("create kucoin trigger with venue", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="kucoin"))),
    Case("create backpack perp trigger", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="backpack", symbol="SOL_USDC_PERP",
                                           targetPrice=140, stopLoss=130, takeProfit=160))),
    Case("create backpack spot trigger", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", {**SPOT_TRIGGER, "venue": "backpack",
                                       "symbol": "SOL_USDC"})),
    Case("create backpack trigger, longest base", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="backpack", symbol="A" * 15 + "_USDC_PERP"))),
    # null is absent for the optional fields (the JS SDK writes null for a field the app's
    # form left empty); more in NULL_CASES below, which the core and the API share
    Case("create trigger with ocoTriggerId null", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(ocoTriggerId=None, venue=None))),
    Case("edit trigger venue to null", lambda c, u: c.update(f"users/{u}/tradeTriggers/t1",
                                                             {"venue": None})),
    Case("watch a symbol", lambda c, u: c.create(f"users/{u}/watchlist/SOLUSDTM",
                                                 {"symbol": "SOLUSDTM"})),
    Case("unwatch a symbol", lambda c, u: c.delete(f"users/{u}/watchlist/BTC-USDT")),
    Case("rename", lambda c, u: c.update(f"users/{u}", {"displayName": "Grace"})),
    Case("turn the ai agent on", lambda c, u: c.update(f"users/{u}", {
        "automation.ai.enabled": True, "automation.ai.maxRiskPercent": 2.5,
        "automation.ai.autoExecute": True})),
    Case("set the watchlist interval", lambda c, u: c.update(f"users/{u}", {
        "automation.watchlist.intervalMinutes": 30, "automation.watchlist.enabled": True})),
]

HOSTILE = [
    # the limits' counters and the position count: the backend's alone
    Case("reset one's own usage counts", lambda c, u: c.create(
        f"usage/{u}", {"aiRuns": {"windowStart": 0, "count": 0}})),
    Case("read one's own usage counts", lambda c, u: c.get(f"usage/{u}")),
    Case("lower one's own position count", lambda c, u: c.update(
        f"users/{u}", {"openPositionCount": 0})),
    # trailing stops and OCO links
    Case("trailing stop with two offsets", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(trailingStop={"percent": 1, "distance": 5}))),
    Case("trailing stop of 80 percent", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(trailingStop={"percent": 80}))),
    Case("trailing stop with an unknown key", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(trailingStop={"percent": 1, "peak": 1}))),
    Case("trailing stop that is not a map", lambda c, u: c.update(
        f"users/{u}/openPositions/p1", {"details.trailingStop": 5})),
    Case("write a trailing peak", lambda c, u: c.update(
        f"users/{u}/openPositions/p1", {"trailing": {"highWaterMark": 1}})),
    Case("one-sided OCO link", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(ocoTriggerId="t1"))),
    Case("OCO link to itself", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(ocoTriggerId="n"))),
    Case("OCO link that is not an id", lambda c, u: c.create_all({
        f"users/{u}/tradeTriggers/oa": trig(ocoTriggerId="../ob"),
        f"users/{u}/tradeTriggers/ob": trig(ocoTriggerId="oa")})),
    # other users' data
    Case("read another's account", lambda c, u: c.get(f"users/{u}"), "other"),
    Case("read another's position", lambda c, u: c.get(f"users/{u}/openPositions/p1"),
         "other"),
    Case("read another's execution", lambda c, u: c.get(f"users/{u}/executedTriggers/e0"),
         "other"),
    Case("read another's plan", lambda c, u: c.get(f"users/{u}/aiPlans/a1"), "other"),
    Case("create a trigger for another", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig()), "other"),
    Case("cancel another's trigger", lambda c, u: c.update(
        f"users/{u}/tradeTriggers/t1", {"details.status": "cancelled"}), "other"),
    Case("delete another's trigger", lambda c, u: c.delete(f"users/{u}/tradeTriggers/t1"),
         "other"),
    Case("close another's position", lambda c, u: c.update(
        f"users/{u}/openPositions/p1", {"details.status": "closing"}), "other"),
    Case("watch for another", lambda c, u: c.create(f"users/{u}/watchlist/SOLUSDTM",
                                                    {"symbol": "SOLUSDTM"}), "other"),
    Case("rename another", lambda c, u: c.update(f"users/{u}", {"displayName": "x"}), "other"),
    # unauthenticated
    Case("anonymous read account", lambda c, u: c.get(f"users/{u}"), "anon"),
    Case("anonymous read config", lambda c, u: c.get("config/trading"), "anon"),
    Case("anonymous create trigger", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                           trig()), "anon"),
    Case("anonymous close position", lambda c, u: c.update(
        f"users/{u}/openPositions/p1", {"details.status": "closing"}), "anon"),
    # balance and bookkeeping
    Case("set own balance", lambda c, u: c.update(f"users/{u}", {"balance": 1e9})),
    Case("raise own balance a little", lambda c, u: c.update(f"users/{u}", {"balance": 10001})),
    Case("set createdAt", lambda c, u: c.update(f"users/{u}", {"createdAt": LATER})),
    Case("set nextRun", lambda c, u: c.update(f"users/{u}", {"automation.ai.nextRun": LATER})),
    Case("set lastPlanId", lambda c, u: c.update(f"users/{u}",
                                                 {"automation.ai.lastPlanId": "x"})),
    Case("set lastStatus", lambda c, u: c.update(f"users/{u}",
                                                 {"automation.ai.lastStatus": "error"})),
    Case("set a lease", lambda c, u: c.update(f"users/{u}", {"automation.ai.lease": {
        "runId": "me", "until": T0}})),
    Case("replace the automation map", lambda c, u: c.update(f"users/{u}", {
        "automation": {"ai": {"enabled": True}}})),
    Case("interval 0", lambda c, u: c.update(f"users/{u}",
                                             {"automation.ai.intervalMinutes": 0})),
    Case("interval of a week", lambda c, u: c.update(f"users/{u}",
                                                     {"automation.ai.intervalMinutes": 10080})),
    Case("interval as text", lambda c, u: c.update(f"users/{u}",
                                                   {"automation.ai.intervalMinutes": "60"})),
    Case("risk 50 %", lambda c, u: c.update(f"users/{u}", {"automation.ai.maxRiskPercent": 50})),
    Case("risk NaN", lambda c, u: c.update(f"users/{u}",
                                           {"automation.ai.maxRiskPercent": math.nan})),
    Case("enabled as text", lambda c, u: c.update(f"users/{u}", {"automation.ai.enabled": "yes"})),
    Case("unknown automation", lambda c, u: c.update(f"users/{u}", {"automation.bot": {}})),
    Case("unknown account field", lambda c, u: c.update(f"users/{u}", {"isAdmin": True})),
    Case("oversized name", lambda c, u: c.update(f"users/{u}", {"displayName": "x" * 1000})),
    Case("delete own account", lambda c, u: c.delete(f"users/{u}")),
    Case("create account with a balance", lambda c, u: c.create(
        f"users/{u}-new", {"displayName": "x", "balance": 1e6})),
    # positions
    Case("forge a close request", lambda c, u: c.update(f"users/{u}/openPositions/p1", {
        "details.closeRequest": {"reason": "manual", "price": 1e6}})),
    Case("close at a price", lambda c, u: c.update(f"users/{u}/openPositions/p1", {
        "details.status": "closing", "details.closeRequest": {"reason": "take_profit",
                                                              "price": 99999}})),
    Case("change size", lambda c, u: c.update(f"users/{u}/openPositions/p1", {"size": 100})),
    Case("change entry", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                               {"averageEntryPrice": 1})),
    Case("change margin", lambda c, u: c.update(f"users/{u}/openPositions/p1", {"margin": 1})),
    Case("create a position", lambda c, u: c.create(f"users/{u}/openPositions/n", POSITION)),
    Case("delete a position", lambda c, u: c.delete(f"users/{u}/openPositions/p1")),
    Case("stop-loss above entry", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                        {"details.stopLoss": 61000})),
    Case("take-profit below entry", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                          {"details.takeProfit": 50000})),
    Case("stop-loss NaN", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                {"details.stopLoss": math.nan})),
    Case("stop-loss as text", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                    {"details.stopLoss": "58000"})),
    Case("reopen a closing position", lambda c, u: c.update(f"users/{u}/openPositions/pc",
                                                            {"details.status": "open"})),
    Case("status settled", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                 {"details.status": "settled"})),
    Case("move levels while closing", lambda c, u: c.update(f"users/{u}/openPositions/pc",
                                                            {"details.stopLoss": 59000})),
    Case("forge a settlement error", lambda c, u: c.update(f"users/{u}/openPositions/p1",
                                                           {"details.settlementError": "x"})),
    # executions, history, plans, config
    Case("forge an execution", lambda c, u: c.create(f"users/{u}/executedTriggers/n", {
        **TRIGGER, "executedPrice": 1, "status": "pending"})),
    Case("mark an execution filled", lambda c, u: c.update(f"users/{u}/executedTriggers/e0",
                                                           {"status": "rejected"})),
    Case("forge history", lambda c, u: c.create(f"users/{u}/tradeHistory/n",
                                                {"status": "closed", "pnl": 1e6})),
    Case("edit history pnl", lambda c, u: c.update(f"users/{u}/tradeHistory/h1",
                                                   {"pnl": 1e6})),
    Case("forge a plan", lambda c, u: c.create(f"users/{u}/aiPlans/n", {"proposals": []})),
    # the account journal: the backend's alone
    Case("forge a journal entry", lambda c, u: c.create(f"users/{u}/ledger/gift", {
        "kind": "adjustment", "amount": 1e6, "balanceAfter": 1e6, "currency": "USDT",
        "ref": "me", "symbol": None})),
    Case("edit a journal entry", lambda c, u: c.update(f"users/{u}/ledger/funded",
                                                       {"amount": 1e6})),
    Case("delete a journal entry", lambda c, u: c.delete(f"users/{u}/ledger/funded")),
    Case("read another's journal", lambda c, u: c.get(f"users/{u}/ledger/funded"), "other"),
    Case("read the audits", lambda c, u: c.get("audits/2026-01-01")),
    Case("write config", lambda c, u: c.update("config/trading", {"spotTakerFee": 0})),
    Case("raise the api rate limit", lambda c, u: c.update("config/limits", {
        "apiRequestsPerMinute": 1000000})),
    # the HTTP API's bookkeeping: neither readable nor writable by clients
    Case("read an idempotency record", lambda c, u: c.get(f"users/{u}/idempotencyKeys/k1")),
    Case("forge an idempotency record", lambda c, u: c.create(
        f"users/{u}/idempotencyKeys/k2", {"requestHash": "h", "status": 201,
                                          "response": "{}"})),
    Case("rewrite an idempotency answer", lambda c, u: c.update(
        f"users/{u}/idempotencyKeys/k1", {"response": "{\"id\": \"x\"}"})),
    Case("delete an idempotency record", lambda c, u: c.delete(
        f"users/{u}/idempotencyKeys/k1")),
    Case("read the rate-limit window", lambda c, u: c.get(f"users/{u}/apiUsage/window")),
    Case("reset the rate-limit window", lambda c, u: c.update(
        f"users/{u}/apiUsage/window", {"count": 0})),
    Case("delete the rate-limit window", lambda c, u: c.delete(f"users/{u}/apiUsage/window")),
    Case("read another's rate-limit window", lambda c, u: c.get(
        f"users/{u}/apiUsage/window"), "other"),
    # trigger fields
    Case("amount 0", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(amount=0))),
    Case("amount negative", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                  trig(amount=-100))),
    Case("amount NaN", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                             trig(amount=math.nan))),
    Case("amount infinite", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                  trig(amount=math.inf))),
    Case("amount as text", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                 trig(amount="100"))),
    Case("amount astronomical", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                      trig(amount=1e15))),
    Case("leverage 0", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(leverage=0))),
    Case("leverage 101", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                               trig(leverage=101))),
    Case("leverage 2.5", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                               trig(leverage=2.5))),
    Case("futures without leverage", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                           trig(leverage=DROP))),
    Case("edit futures leverage to null", lambda c, u: c.update(
        f"users/{u}/tradeTriggers/t1", {"leverage": None})),
    Case("spot with leverage 0", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                       {**SPOT_TRIGGER, "leverage": 0})),
    Case("spot with leverage as text", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", {**SPOT_TRIGGER, "leverage": "1"})),
    Case("spot with leverage", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                     {**SPOT_TRIGGER, "leverage": 3})),
    Case("futures buy", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(action="buy"))),
    Case("spot short", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                             {**SPOT_TRIGGER, "action": "short"})),
    Case("unknown symbol type", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                      trig(symbolType="options"))),
    Case("lowercase symbol", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                   trig(symbol="xbtusdtm"))),
    Case("inverse contract", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                   trig(symbol="XBTUSDM"))),
    Case("oversized symbol", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                   trig(symbol="X" * 1000 + "USDTM"))),
    Case("unknown condition", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                    trig(condition="sideways"))),
    Case("above without target", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                       trig(targetPrice=DROP))),
    Case("market with a target", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                       trig(condition="market"))),
    Case("long stop above target", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                         trig(stopLoss=61000))),
    Case("long take-profit below target", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(takeProfit=59000))),
    Case("short stop below target", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(
        action="short", stopLoss=59000, takeProfit=DROP))),
    Case("unknown trigger field", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                                        trig(priority="high"))),
    Case("create already executed", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(details={"status": "executed"}))),
    Case("create with an error", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(
        details={"status": "active", "error": "none"}))),
    Case("other venue", lambda c, u: c.create(f"users/{u}/tradeTriggers/n",
                                              trig(venue="bybit"))),
    Case("backpack venue, kucoin futures symbol", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="backpack"))),
    Case("backpack venue, kucoin spot symbol", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", {**SPOT_TRIGGER, "venue": "backpack"})),
    Case("kucoin venue, backpack perp symbol", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="kucoin", symbol="SOL_USDC_PERP"))),
    Case("no venue, backpack spot symbol", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", {**SPOT_TRIGGER, "symbol": "SOL_USDC"})),
    Case("backpack spot symbol as futures", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="backpack", symbol="SOL_USDC"))),
    Case("backpack perp symbol as spot", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", {**SPOT_TRIGGER, "venue": "backpack",
                                       "symbol": "SOL_USDC_PERP"})),
    Case("backpack lowercase symbol", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="backpack", symbol="sol_usdc_perp"))),
    Case("backpack usdt perp", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="backpack", symbol="SOL_USDT_PERP"))),
    Case("venue capitalised", lambda c, u: c.create(
        f"users/{u}/tradeTriggers/n", trig(venue="Backpack", symbol="SOL_USDC_PERP"))),
    Case("edit a trigger onto another venue", lambda c, u: c.update(
        f"users/{u}/tradeTriggers/t1", {"venue": "backpack"})),
    Case("create cancelled", lambda c, u: c.create(f"users/{u}/tradeTriggers/n", trig(
        details={"status": "cancelled"}))),
    # status jumps on triggers
    Case("revive a cancelled trigger", lambda c, u: c.update(f"users/{u}/tradeTriggers/tc",
                                                             {"details.status": "active"})),
    Case("edit a cancelled trigger", lambda c, u: c.update(f"users/{u}/tradeTriggers/tc",
                                                           {"amount": 1})),
    Case("reject own trigger", lambda c, u: c.update(f"users/{u}/tradeTriggers/t1",
                                                     {"details.status": "rejected"})),
    Case("cancel and resize", lambda c, u: c.update(f"users/{u}/tradeTriggers/t1", {
        "details.status": "cancelled", "amount": 1e6})),
    Case("edit an ai trigger's plan", lambda c, u: c.update(f"users/{u}/tradeTriggers/ai",
                                                            {"planId": "forged"})),
    Case("edit to an invalid level", lambda c, u: c.update(f"users/{u}/tradeTriggers/t1",
                                                           {"stopLoss": 70000})),
    # watchlist
    Case("watch with scraped data", lambda c, u: c.create(
        f"users/{u}/watchlist/SOLUSDTM", {"symbol": "SOLUSDTM", "price": 1})),
    Case("watch under another id", lambda c, u: c.create(f"users/{u}/watchlist/SOLUSDTM",
                                                         {"symbol": "ETHUSDTM"})),
    Case("edit scraped price", lambda c, u: c.update(f"users/{u}/watchlist/BTC-USDT",
                                                     {"price": 1})),
    Case("watch a lowercase symbol", lambda c, u: c.create(f"users/{u}/watchlist/btc-usdt",
                                                           {"symbol": "btc-usdt"})),
]


def create_trigger(document: dict[str, Any]) -> Callable[[AppClient, str], int]:
    """Return the act of creating `document` as a new trigger of the account."""
    return lambda c, u: c.create(f"users/{u}/tradeTriggers/n", document)


# Null fields: the same documents the core's and the API's tests read
# (tests/unit/test_null_fields.py), so the three agree.
LEGITIMATE += [Case(f"create trigger, {case.name}", create_trigger(case.document))
               for case in NULL_CASES if case.reason is None]
HOSTILE += [Case(f"create trigger, {case.name}", create_trigger(case.document))
            for case in NULL_CASES if case.reason is not None]


def run(db: Any, case: Case) -> int:
    owner = new_uid("rules")
    world(db, owner)
    actor = {"self": owner, "other": new_uid("intruder"), "anon": None}[case.actor]
    return case.act(AppClient(actor), owner)


def test_there_are_enough_cases() -> None:
    assert len(HOSTILE) >= 60 and len(LEGITIMATE) >= 20


@pytest.mark.parametrize("case", LEGITIMATE, ids=lambda c: c.name)
def test_legitimate_app_actions_are_allowed(db: Any, case: Case) -> None:
    assert run(db, case) == 200


@pytest.mark.parametrize("case", HOSTILE, ids=lambda c: c.name)
def test_hostile_attempts_are_denied(db: Any, case: Case) -> None:
    assert run(db, case) == 403
