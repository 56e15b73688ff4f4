"""mainScheduler's job on the emulators: due selection, claims, outcomes, the two tasks."""

from __future__ import annotations

import asyncio
import time
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cogmora_backend.automation.agent import Agent
from cogmora_backend.automation.quotes import ExchangeQuotes
from cogmora_backend.automation.scheduler import Claim, TaskResult, run_due_tasks
from cogmora_backend.automation.scraper import Scraper, ScraperSource
from cogmora_backend.automation.tasks import AutomationTasks
from cogmora_backend.firestore import FirestoreDatabase
from cogmora_core.contract.triggers import parse_trigger
from tests.support.emulator import document, functions_url, new_uid, wait_for
from tests.support.pages import REDESIGNED, market_page, serving
from tests.support.processes import Exchange
from tests.support.rest import id_token

NOW = datetime(2026, 3, 1, 12, 0, tzinfo=UTC)


def user_with(db: Any, prefix: str, **automation: dict) -> str:
    uid = new_uid(prefix)
    db.document(f"users/{uid}").set({"balance": 10000, "createdAt": NOW,
                                     "automation": automation})
    return uid


class Counting:
    """Runners that record what ran; a uid in `fail` raises, one in `slow` hangs."""

    def __init__(self, fail: set[str] = frozenset(), slow: set[str] = frozenset()) -> None:
        self.ran: list[tuple[str, str]] = []
        self.fail, self.slow = fail, slow

    async def __call__(self, claim: Claim) -> TaskResult:
        self.ran.append((claim.uid, claim.task))
        if claim.uid in self.fail:
            raise RuntimeError("exchange said no")
        if claim.uid in self.slow:
            await asyncio.sleep(30)
        return TaskResult()


def run(db: Any, now: datetime, runner: Counting, **options: Any) -> Any:
    return asyncio.run(run_due_tasks(FirestoreDatabase(db), now,
                                     {"ai": runner, "watchlist": runner}, **options))


def mine(runner: Counting, uids: set[str]) -> list[tuple[str, str]]:
    return sorted(item for item in runner.ran if item[0] in uids)


def test_only_due_tasks_run_and_next_run_moves_by_the_interval(db: Any) -> None:
    due = user_with(db, "due", ai={"enabled": True, "intervalMinutes": 30,
                                   "nextRun": NOW - timedelta(minutes=1)},
                    watchlist={"enabled": True, "nextRun": NOW})
    later = user_with(db, "later", ai={"enabled": True, "nextRun": NOW + timedelta(seconds=1)})
    off = user_with(db, "off", ai={"enabled": False, "nextRun": NOW - timedelta(days=1)})
    runner = Counting()

    run(db, NOW, runner)

    assert mine(runner, {due, later, off}) == [(due, "ai"), (due, "watchlist")]
    automation = document(db, f"users/{due}")["automation"]
    assert automation["ai"]["nextRun"] == NOW + timedelta(minutes=30)
    assert automation["watchlist"]["nextRun"] == NOW + timedelta(minutes=15)  # the default
    assert automation["ai"]["lastRun"] == NOW
    assert (automation["ai"]["lastStatus"], automation["ai"]["lastError"]) == ("ok", None)
    assert automation["ai"]["lease"] is None
    assert document(db, f"users/{later}")["automation"]["ai"]["nextRun"] == (
        NOW + timedelta(seconds=1))


def test_a_newly_enabled_task_is_due_at_once(db: Any) -> None:
    uid = user_with(db, "new", ai={"enabled": True, "intervalMinutes": 5})

    scheduled = wait_for(lambda: document(db, f"users/{uid}")["automation"]["ai"].get("nextRun"))
    runner = Counting()
    run(db, datetime.now(UTC) + timedelta(seconds=2), runner)

    assert isinstance(scheduled, datetime)
    assert mine(runner, {uid}) == [(uid, "ai")]


def test_two_runs_started_together_run_each_task_once(db: Any) -> None:
    uids = {user_with(db, "race", ai={"enabled": True, "nextRun": NOW},
                      watchlist={"enabled": True, "nextRun": NOW}) for _ in range(8)}
    runner = Counting()

    async def both() -> None:
        database = FirestoreDatabase(db)
        runners = {"ai": runner, "watchlist": runner}
        await asyncio.gather(run_due_tasks(database, NOW, runners),
                             run_due_tasks(database, NOW, runners))

    asyncio.run(both())

    assert mine(runner, uids) == sorted((uid, task) for uid in uids
                                        for task in ("ai", "watchlist"))


def test_a_failing_or_slow_task_records_its_error_and_the_others_complete(db: Any) -> None:
    good, bad, slow = (user_with(db, name, ai={"enabled": True, "nextRun": NOW})
                       for name in ("good", "bad", "slow"))
    runner = Counting(fail={bad}, slow={slow})

    report = run(db, NOW, runner, time_limit=1.0)

    assert mine(runner, {good, bad, slow}) == sorted([(good, "ai"), (bad, "ai"), (slow, "ai")])
    ai = {uid: document(db, f"users/{uid}")["automation"]["ai"] for uid in (good, bad, slow)}
    assert (ai[good]["lastStatus"], ai[good]["lastError"]) == ("ok", None)
    assert (ai[bad]["lastStatus"], ai[bad]["lastError"]) == (
        "error", "RuntimeError: exchange said no")
    assert (ai[slow]["lastStatus"], ai[slow]["lastError"]) == (
        "timeout", "took longer than 1.0 s")
    assert report.outcomes["ai:error"] >= 1 and report.outcomes["ai:timeout"] >= 1


def watch(db: Any, uid: str, symbol: str, **data: Any) -> None:
    db.document(f"users/{uid}/watchlist/{symbol}").set({"symbol": symbol, **data})


def run_tasks(db: Any, server_pattern: str, now: datetime,
              kinds: tuple[str, ...] = ("ai", "watchlist"), limits: Any = None,
              **options: Any) -> Any:
    """Run the due tasks of `kinds` as mainScheduler does: the market prices from
    KUCOIN_*_API; `limits` (a LimitsConfig) and `options` (of `run_due_tasks`) as told."""

    async def go() -> Any:
        scraper = Scraper(ScraperSource(url_pattern=server_pattern))
        quotes = ExchangeQuotes.from_environ()
        try:
            tasks = AutomationTasks(FirestoreDatabase(db), Agent(), scraper, quotes, limits)
            runners = {"ai": tasks.ai, "watchlist": tasks.watchlist}
            return await run_due_tasks(FirestoreDatabase(db), now,
                                       {kind: runners[kind] for kind in kinds}, **options)
        finally:
            await asyncio.gather(scraper.close(), quotes.close())

    return asyncio.run(go())


DEFAULT_LIMITS = {"maxLeverage": 10, "maxAmountPercent": 25, "maxPriceDistancePercent": 20,
                  "maxQuoteAgeSeconds": 60}


def test_ai_task_writes_the_plan_and_auto_executes_valid_triggers(
    db: Any, exchange: Exchange
) -> None:
    now = datetime(2026, 3, 2, 9, 30, tzinfo=UTC)
    uid = user_with(db, "agent", ai={"enabled": True, "autoExecute": True,
                                     "maxRiskPercent": 1, "nextRun": now})
    watch(db, uid, "SOLUSDTM", price=141.5, change24h=2.5, high24h=142, low24h=134)
    watch(db, uid, "XBTUSDTM", price=60000, change24h=1, high24h=61000, low24h=59000)
    exchange.publish("SOLUSDTM", "141.5", "141.49", "141.51")
    exchange.publish("XBTUSDTM", "60000", "59999.9", "60000.1")

    with serving() as server:
        run_tasks(db, server.url_pattern, now)

    ai = document(db, f"users/{uid}")["automation"]["ai"]
    plan_id = f"plan-20260302T093000Z-{uid[-6:]}"
    assert (ai["lastPlanId"], ai["lastStatus"]) == (plan_id, "ok")
    plan = document(db, f"users/{uid}/aiPlans/{plan_id}")
    assert plan is not None
    assert set(plan) == {"planId", "proposals", "dropped", "summary", "rationale", "model",
                         "createdAt", "balance", "maxRiskPercent", "autoExecute", "triggerIds",
                         "quotes", "limits"}
    assert (plan["model"], plan["autoExecute"], plan["dropped"]) == (
        "cogmora/rules-v1", True, [])
    # the exchange's prices the proposals were checked against, and the caps
    assert [{k: v for k, v in q.items() if k != "timeMs"} for q in plan["quotes"]] == [
        {"symbol": "SOLUSDTM", "venue": "kucoin", "price": 141.5, "bestBid": 141.49,
         "bestAsk": 141.51},
        {"symbol": "XBTUSDTM", "venue": "kucoin", "price": 60000, "bestBid": 59999.9,
         "bestAsk": 60000.1}]
    assert plan["limits"] == DEFAULT_LIMITS
    assert plan["proposals"] == [{
        "symbol": "SOLUSDTM", "symbolType": "futures", "condition": "above",
        "targetPrice": 142.142, "action": "long", "amount": 1184.51, "leverage": 3,
        "stopLoss": 138.142, "takeProfit": 150.142, "rationale": plan["rationale"][0]}]
    assert plan["triggerIds"] == [f"{plan_id}-0"]
    trigger = document(db, f"users/{uid}/tradeTriggers/{plan_id}-0")
    assert trigger is not None and (trigger["source"], trigger["planId"]) == ("ai", plan_id)
    order = parse_trigger(trigger)
    assert (order.symbol, str(order.target_price), order.leverage) == ("SOLUSDTM", "142.142", 3)


def test_the_builtin_model_is_checked_against_the_market_and_only_the_kept_are_armed(
    db: Any, exchange: Exchange
) -> None:
    now = datetime(2026, 3, 2, 10, 30, tzinfo=UTC)
    uid = user_with(db, "agent-risk", ai={"enabled": True, "autoExecute": True,
                                          "maxRiskPercent": 1, "nextRun": now})
    # The scraped data the built-in model plans from, for four markets:
    watch(db, uid, "AIXUSDTM", price=141.5, change24h=2.5, high24h=142, low24h=134)  # unlisted
    watch(db, uid, "BTC-USDT", price=86100, change24h=-1.2, high24h=88000, low24h=86000)
    watch(db, uid, "ETHUSDTM", price=3050, change24h=-0.5, high24h=3060, low24h=2950)
    watch(db, uid, "SOLUSDTM", price=141.5, change24h=2.5, high24h=142, low24h=134)
    # ... and the market: BTC where the scrape says; no ETHUSDTM price at all; SOLUSDTM has
    # run past the breakout level 142.142 the scrape suggests.
    exchange.publish("BTC-USDT", "86100", "86099.9", "86100.1")
    exchange.publish("SOLUSDTM", "150", "149.99", "150.01")

    with serving() as server:
        run_tasks(db, server.url_pattern, now)

    plan_id = f"plan-20260302T103000Z-{uid[-6:]}"
    ai = document(db, f"users/{uid}")["automation"]["ai"]
    assert (ai["lastPlanId"], ai["lastStatus"], ai["lastError"]) == (plan_id, "ok", None)
    plan = document(db, f"users/{uid}/aiPlans/{plan_id}")
    assert plan is not None
    assert plan["proposals"] == [{
        "symbol": "BTC-USDT", "symbolType": "spot", "condition": "below", "targetPrice": 85914,
        "action": "buy", "amount": 2000, "leverage": 1, "stopLoss": 84914,
        "takeProfit": 86914, "rationale": plan["rationale"][0]}]
    assert [(d["proposal"]["symbol"], d["reason"], d["detail"]) for d in plan["dropped"]] == [
        ("AIXUSDTM", "unsupported_symbol", "AIXUSDTM (futures) is not listed on kucoin"),
        ("ETHUSDTM", "no_fresh_price", "no kucoin price for ETHUSDTM"),
        # fires at once at the ask 150.01: 1184.51 × 3 × (150.01 − 138.142) / 150.01
        ("SOLUSDTM", "over_risk_budget", "loss at stop 281.14 > 100.00 USDT (entry 150.01, "
                                         "the trigger fires at once: the worse of target and "
                                         "market)")]
    assert [q["symbol"] for q in plan["quotes"]] == ["BTC-USDT", "SOLUSDTM"]
    assert plan["triggerIds"] == [f"{plan_id}-0"]
    triggers = {snap.id: snap.to_dict() for snap in
                db.collection(f"users/{uid}/tradeTriggers").stream()}
    assert list(triggers) == [f"{plan_id}-0"]  # nothing armed for the dropped proposals
    assert (triggers[f"{plan_id}-0"]["symbol"], triggers[f"{plan_id}-0"]["source"]) == (
        "BTC-USDT", "ai")


def test_config_automation_caps_the_agent(db: Any, exchange: Exchange) -> None:
    now = datetime(2026, 3, 2, 11, 30, tzinfo=UTC)
    uid = user_with(db, "agent-caps", ai={"enabled": True, "maxRiskPercent": 1,
                                          "nextRun": now})
    watch(db, uid, "SOLUSDTM", price=141.5, change24h=2.5, high24h=142, low24h=134)
    exchange.publish("SOLUSDTM", "141.5", "141.49", "141.51")
    db.document("config/automation").set({"maxLeverage": 2, "maxAmountPercent": 5,
                                          "maxQuoteAgeSeconds": "soon"})
    try:
        with serving() as server:
            run_tasks(db, server.url_pattern, now)
    finally:
        db.document("config/automation").delete()

    plan = document(db, f"users/{uid}/aiPlans/plan-20260302T113000Z-{uid[-6:]}")
    assert plan is not None
    assert plan["limits"] == {**DEFAULT_LIMITS, "maxLeverage": 2, "maxAmountPercent": 5}
    # the built-in model sizes within the caps: 2x, at most 5 % of 10,000
    assert [(p["symbol"], p["leverage"], p["amount"]) for p in plan["proposals"]] == [
        ("SOLUSDTM", 2, 500)]
    assert list(db.collection(f"users/{uid}/tradeTriggers").stream()) == []  # no autoExecute


def test_watchlist_task_scrapes_each_symbol_once_and_records_per_symbol_errors(
    db: Any,
) -> None:
    now = datetime(2026, 3, 3, 8, 0, tzinfo=UTC)
    one = user_with(db, "watch-one", watchlist={"enabled": True, "nextRun": now})
    two = user_with(db, "watch-two", watchlist={"enabled": True, "nextRun": now})
    watch(db, one, "SOL-USDT")
    watch(db, two, "SOL-USDT")
    watch(db, two, "ETH-USDT", price=3000)

    with serving() as server:
        server.pages["SOL-USDT"] = market_page("SOL-USDT", price="141.50", change="-1.25",
                                               high="142.8", low="134.43", volume="2.5M",
                                               cap="$78,123,456,789")
        server.pages["ETH-USDT"] = REDESIGNED
        run_tasks(db, server.url_pattern, now)
        assert server.requests["SOL-USDT"] == 1

    sol = document(db, f"users/{one}/watchlist/SOL-USDT")
    assert {k: sol[k] for k in ("price", "change24h", "high24h", "low24h", "volume24h",
                                "marketCap", "error")} == {
        "price": 141.5, "change24h": -1.25, "high24h": 142.8, "low24h": 134.43,
        "volume24h": 2500000, "marketCap": 78123456789, "error": None}
    assert isinstance(sol["updatedAt"], datetime)
    eth = document(db, f"users/{two}/watchlist/ETH-USDT")
    assert (eth["price"], eth["error"]) == (3000, 'layout_changed: no price ([data-field="price"])')
    assert document(db, f"users/{one}")["automation"]["watchlist"]["lastStatus"] == "ok"
    watchlist_two = document(db, f"users/{two}")["automation"]["watchlist"]
    assert watchlist_two["lastStatus"] == "partial"
    assert watchlist_two["lastError"] == (
        'ETH-USDT: layout_changed: no price ([data-field="price"])')


@pytest.fixture
def callable_url() -> str:
    return functions_url("proposePlan")


def test_the_callable_plans_now_for_the_signed_in_user_only(
    db: Any, callable_url: str, exchange: Exchange
) -> None:
    uid = user_with(db, "caller", ai={"enabled": False, "maxRiskPercent": 1})
    watch(db, uid, "SOLUSDTM", price=141.5, change24h=2.5, high24h=142, low24h=134)
    # the function reads the market where the emulator's KUCOIN_FUTURES_API points
    exchange.publish("SOLUSDTM", "141.5", "141.49", "141.51")

    answer = httpx.post(callable_url, json={"data": {}}, timeout=60,
                        headers={"Authorization": f"Bearer {id_token(uid)}"})
    anonymous = httpx.post(callable_url, json={"data": {}}, timeout=60)

    assert answer.status_code == 200, answer.text
    result = answer.json()["result"]
    assert [p["symbol"] for p in result["plan"]["proposals"]] == ["SOLUSDTM"]
    assert result["plan"]["dropped"] == []
    assert document(db, f"users/{uid}/aiPlans/{result['planId']}") is not None
    assert document(db, f"users/{uid}")["automation"]["ai"]["lastPlanId"] == result["planId"]
    assert list(db.collection(f"users/{uid}/tradeTriggers").stream()) == []  # no autoExecute
    assert anonymous.status_code == 401
    assert anonymous.json()["error"]["status"] == "UNAUTHENTICATED"


def test_a_watchlist_cut_off_at_its_limit_never_cancels_another_users_shared_fetch(
    db: Any,
) -> None:
    # One page both users watch takes 1.5 s; each task may take 1 s; one task at a time.
    # The first user's task times out while waiting for the shared fetch; the second then
    # waits for the same fetch. It once received the first one's cancellation
    # (CancelledError, not an Exception), which aborted the whole run with leases left.
    now = datetime(2026, 3, 4, 9, 0, tzinfo=UTC)
    first = user_with(db, "shared-one", watchlist={"enabled": True, "nextRun": now})
    second = user_with(db, "shared-two", watchlist={"enabled": True, "nextRun": now})
    other = user_with(db, "shared-other", watchlist={"enabled": True, "nextRun": now})
    for uid in (first, second):
        watch(db, uid, "SLOW-USDT")
    watch(db, other, "FAST-USDT")

    with serving() as server:
        server.pages["SLOW-USDT"] = market_page("SLOW-USDT")
        server.pages["FAST-USDT"] = market_page("FAST-USDT")
        server.slow["SLOW-USDT"] = 1.5
        report = run_tasks(db, server.url_pattern, now, ("watchlist",), concurrency=1,
                           time_limit=1.0)
        assert server.requests["SLOW-USDT"] == 1  # still fetched once for both

    statuses = {uid: document(db, f"users/{uid}")["automation"]["watchlist"]
                for uid in (first, second, other)}
    assert sum(report.outcomes.values()) == report.claimed["watchlist"] >= 3
    for uid in (first, second, other):
        assert statuses[uid].get("lease") is None, uid  # every lease released
        assert statuses[uid]["lastStatus"] in ("ok", "timeout"), statuses[uid]
    assert statuses[other]["lastStatus"] == "ok"
    # Each user's task ran out of its own second, or had the shared page by then.
    assert "timeout" in {statuses[first]["lastStatus"], statuses[second]["lastStatus"]}


def test_the_ai_limits_hold_whatever_the_user_writes(db: Any) -> None:
    from cogmora_core.config import LimitsConfig

    now = datetime(2026, 3, 5, 10, 0, tzinfo=UTC)
    # One minute asked for; the limits say at least 15, and one run a day.
    uid = user_with(db, "ai-limited", ai={"enabled": True, "nextRun": now,
                                          "intervalMinutes": 1})
    limits = LimitsConfig(min_ai_interval_minutes=15, max_ai_runs_per_day=1)

    def run_at(moment: datetime) -> Any:
        return run_tasks(db, "http://127.0.0.1:9/{symbol}", moment, ("ai",), limits,
                         min_interval_minutes={"ai": limits.min_ai_interval_minutes})

    run_at(now)
    ai = document(db, f"users/{uid}")["automation"]["ai"]
    assert ai["lastStatus"] == "ok" and ai["nextRun"] == now + timedelta(minutes=15)
    run_at(now + timedelta(minutes=15))
    ai = document(db, f"users/{uid}")["automation"]["ai"]
    assert (ai["lastStatus"], ai["lastError"]) == (
        "limited", "too_many_ai_runs: 1 of 1 used in this day (UTC)")
    assert document(db, f"usage/{uid}")["aiRuns"]["count"] == 1


def test_a_watchlist_past_its_limit_scrapes_the_first_symbols_only(db: Any) -> None:
    from cogmora_core.config import LimitsConfig

    now = datetime(2026, 3, 6, 10, 0, tzinfo=UTC)
    uid = user_with(db, "watch-many", watchlist={"enabled": True, "nextRun": now})
    for symbol in ("AAA-USDT", "BBB-USDT", "CCC-USDT"):
        watch(db, uid, symbol)

    with serving() as server:
        for symbol in ("AAA-USDT", "BBB-USDT", "CCC-USDT"):
            server.pages[symbol] = market_page(symbol)
        run_tasks(db, server.url_pattern, now, ("watchlist",),
                  LimitsConfig(max_watchlist_symbols=2))
        assert server.requests["CCC-USDT"] == 0

    task = document(db, f"users/{uid}")["automation"]["watchlist"]
    assert (task["lastStatus"], task["lastError"]) == (
        "partial", "too_many_symbols: more than 2 symbols; the first 2 by symbol are "
        "scraped (config/limits)")
    assert document(db, f"users/{uid}/watchlist/AAA-USDT")["price"] == 141.5
    assert "price" not in document(db, f"users/{uid}/watchlist/CCC-USDT")


def test_the_callable_is_refused_past_the_users_rate_with_when_to_retry(
    db: Any, callable_url: str
) -> None:
    uid = user_with(db, "caller-many", ai={"enabled": False, "maxRiskPercent": 1})
    headers = {"Authorization": f"Bearer {id_token(uid)}"}
    while time.time() % 60 > 40:  # all three calls fall in one minute's window
        time.sleep(1)

    answers = [httpx.post(callable_url, json={"data": {}}, timeout=60, headers=headers)
               for _ in range(3)]

    # config/limits defaults: 2 proposePlan calls a minute.
    assert [a.status_code for a in answers[:2]] == [200, 200], answers[0].text
    refused = answers[2]
    assert refused.status_code == 429, refused.text
    error = refused.json()["error"]
    assert error["status"] == "RESOURCE_EXHAUSTED"
    assert error["message"] == "too_many_requests"
    assert error["details"]["detail"] == "2 of 2 used in this minute"
    assert 0 < error["details"]["retryAfter"] <= 60
    plans = list(db.collection(f"users/{uid}/aiPlans").stream())
    assert len(plans) <= 2  # nothing ran for the refused call
