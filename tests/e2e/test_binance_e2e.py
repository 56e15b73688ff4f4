"""End to end on Binance: emulators + local Binance + `python -m worker` + the functions.

Binance's bookTicker has no last price: conditions are detected on the mid
price (bid + ask) / 2 and fills use the bid or the ask. Binance writes spot
and perpetual symbols alike (BTCUSDT): each tick belongs to its market only.
Each scenario uses symbols of its own, so scenarios never fire each other's
levels.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import httpx
import pytest

from cogmora_core.venues import Venue
from localkucoin.venues import BinanceVenue
from tests.support.builders import DROP, execution_doc, trigger_doc
from tests.support.emulator import balance_of, document, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import (
    closed_history,
    execution_of,
    funded_user,
    keep_publishing,
    open_through_functions,
)


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-binance-e2e")
    yield process
    assert process.stop() == 0, "the worker must stop cleanly on SIGTERM"


def binance(exchange: Exchange) -> BinanceVenue:
    local = exchange.venues[Venue.BINANCE]
    assert isinstance(local, BinanceVenue)
    return local


def perpetual(exchange: Exchange, symbol: str) -> str:
    """List `symbol` as a trading perpetual on the local Binance (exchangeInfo names it)."""
    binance(exchange).futures.perpetuals.add(symbol)
    return symbol


def binance_long(symbol: str, **overrides: Any) -> dict:
    """Return a pending 10x long of 500 on a Binance perpetual, filled at 100."""
    base = {"venue": "binance", "symbol": symbol, "amount": 500, "leverage": 10,
            "executedPrice": 100, "targetPrice": 100}
    return execution_doc(**{**base, **overrides})


def publish(exchange: Exchange, market: str, symbol: str, bid: str, ask: str) -> int:
    return exchange.publish(symbol, bid, bid, ask, venue="binance", symbol_type=market)


def publish_for(exchange: Exchange, market: str, symbol: str, bid: str, ask: str,
                seconds: float) -> None:
    """Publish the same bookTicker for a while (a level that must not fire)."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        publish(exchange, market, symbol, bid, ask)
        time.sleep(0.05)


def test_a_binance_futures_stop_loss_closes_a_long_at_the_bid_with_an_exact_balance(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    symbol = perpetual(exchange, "SLBUSDT")
    uid = funded_user(db)
    position = open_through_functions(db, uid, "p", binance_long(symbol, stopLoss=95))
    assert (position["venue"], position["size"]) == ("binance", 50)
    assert balance_of(db, uid) == D("9497")
    wait_for(lambda: worker.armed(f"users/{uid}/openPositions/p"))
    futures = binance(exchange).futures
    wait_for(lambda: symbol in futures.subscribed())
    assert f"{symbol.lower()}@markPrice@1s" in futures.streams()
    assert symbol not in binance(exchange).spot.subscribed()

    # The bid touches the stop but the mid (95.025) does not: the position stays open.
    publish_for(exchange, "futures", symbol, "94.95", "95.1", seconds=1.0)
    assert document(db, f"users/{uid}/openPositions/p")["details"]["status"] == "open"
    assert worker.metric("cogmora_ticks_total", feed="binance-futures-0") > 0

    history = keep_publishing(lambda: publish(exchange, "futures", symbol, "94.9", "95"),
                              lambda: closed_history(db, uid, "p"))

    # gross 50 × (94.9 − 100) = −255, fee 50 × 94.9 × 0.0006 = 2.847, credit 242.153
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 94.9)
    assert (history["closeFee"], history["credit"], history["pnl"]) == (2.847, 242.153,
                                                                        -260.847)
    assert (history["venue"], history["symbol"], history["symbolType"]) == (
        "binance", symbol, "futures")
    assert balance_of(db, uid) == D("9739.153")
    assert document(db, f"users/{uid}/openPositions/p") is None


def test_spot_and_futures_triggers_on_the_same_symbol_fire_only_on_their_own_market(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    symbol = perpetual(exchange, "BTCUSDT")
    spot_user, futures_user = funded_user(db, "bn-spot"), funded_user(db, "bn-perp")
    spot_path = f"users/{spot_user}/tradeTriggers/s"
    futures_path = f"users/{futures_user}/tradeTriggers/f"
    db.document(spot_path).set(trigger_doc(
        venue="binance", symbol=symbol, symbolType="spot", action="buy", leverage=DROP,
        condition="below", targetPrice=80000, amount=1000))
    db.document(futures_path).set(trigger_doc(
        venue="binance", symbol=symbol, symbolType="futures", action="long", leverage=10,
        condition="below", targetPrice=80000, amount=500))
    for path in (spot_path, futures_path):
        wait_for(lambda path=path: worker.armed(path))
    local = binance(exchange)
    wait_for(lambda: symbol in local.spot.subscribed() and symbol in local.futures.subscribed())

    # Futures crosses first: only the futures trigger fires, the spot one stays armed.
    execution = keep_publishing(
        lambda: (publish(exchange, "spot", symbol, "85000", "85000.1"),
                 publish(exchange, "futures", symbol, "79990", "80000")),
        lambda: execution_of(db, futures_user, "f"))
    assert (execution["status"], execution["executedPrice"]) == ("filled", 80000)
    assert (execution["venue"], execution["symbolType"]) == ("binance", "futures")
    publish_for(exchange, "spot", symbol, "85000", "85000.1", seconds=0.5)
    assert document(db, f"users/{spot_user}/executedTriggers/s") is None
    assert document(db, spot_path)["details"]["status"] == "active"
    assert worker.armed(spot_path)

    # Spot crosses while futures is back up: the spot trigger buys at the ask.
    execution = keep_publishing(
        lambda: (publish(exchange, "futures", symbol, "85000", "85000.1"),
                 publish(exchange, "spot", symbol, "79990", "80000")),
        lambda: execution_of(db, spot_user, "s"))
    assert (execution["status"], execution["executedPrice"]) == ("filled", 80000)
    assert (execution["venue"], execution["symbolType"]) == ("binance", "spot")

    spot = document(db, f"users/{spot_user}/openPositions/s")
    futures = document(db, f"users/{futures_user}/openPositions/f")
    assert spot is not None and futures is not None
    assert (spot["symbol"], spot["symbolType"], spot["size"]) == (symbol, "spot", 0.0125)
    assert (futures["symbol"], futures["symbolType"], futures["size"]) == (
        symbol, "futures", 0.0625)  # 500 × 10 / 80000
    assert balance_of(db, spot_user) == D("8999")  # 1000 and a 0.1 % fee
    assert balance_of(db, futures_user) == D("9497")  # margin 500 and 5000 × 0.0006
    wait_for(lambda: worker.armed(f"users/{futures_user}/openPositions/f"))


def test_binance_funding_read_off_the_mark_price_moves_balances_exactly_once(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    symbol = perpetual(exchange, "FNDUSDT")
    longer, shorter = funded_user(db, "bn-fund-long"), funded_user(db, "bn-fund-short")
    open_through_functions(db, longer, "p", binance_long(symbol))
    open_through_functions(db, shorter, "p", binance_long(symbol, action="short",
                                                          condition="above"))
    for uid in (longer, shorter):
        wait_for(lambda uid=uid: worker.armed(f"users/{uid}/openPositions/p"))
    futures = binance(exchange).futures
    wait_for(lambda: f"{symbol.lower()}@markPrice@1s" in futures.streams())

    funding_time = int(time.time() * 1000) + 500
    assert exchange.call(futures.publish_mark(symbol, D("101.3"), D("0.0001"),
                                              funding_time)) == 1
    time.sleep(0.7)  # the funding time passes; the next frame names the next one (8 h on)
    for _ in range(2):  # repeated frames settle nothing more
        assert exchange.call(futures.publish_mark(symbol, D("101.4"), D("0.00002"),
                                                  funding_time + 8 * 3_600_000)) == 1
    event_path = f"fundingEvents/binance_{symbol}_{funding_time}"
    event = wait_for(lambda: (e := document(db, event_path)) and e["status"] == "applied" and e)
    assert (event["venue"], event["rate"], event["markPrice"], event["positions"]) == (
        "binance", 0.0001, 101.3, 2)

    # 50 × 101.3 × 0.0001 = 0.5065: the long pays it, the short receives it.
    assert balance_of(db, longer) == D("9497") - D("0.5065")
    assert balance_of(db, shorter) == D("9497") + D("0.5065")
    assert document(db, f"users/{longer}/openPositions/p")["funding"]["count"] == 1


def test_the_worker_resubscribes_after_a_dropped_binance_connection_and_ticks_flow_again(
    db: Any, exchange: Exchange, worker: WorkerProcess
) -> None:
    symbol = perpetual(exchange, "DRBUSDT")
    futures = binance(exchange).futures
    uid = funded_user(db)
    open_through_functions(db, uid, "p", binance_long(symbol, stopLoss=95))
    wait_for(lambda: symbol in futures.subscribed())
    connections = futures.connections
    before = worker.metric("cogmora_reconnects_total", feed="binance-futures-0")

    exchange.call(futures.drop_connections())
    wait_for(lambda: worker.metric("cogmora_reconnects_total", feed="binance-futures-0")
             > before)
    wait_for(lambda: symbol in futures.subscribed()
             and f"{symbol.lower()}@markPrice@1s" in futures.streams())
    assert futures.connections > connections
    resubscribed = [m for m in futures.subscribe_messages
                    if m["method"] == "SUBSCRIBE" and f"{symbol.lower()}@bookTicker"
                    in m["params"]]
    assert len(resubscribed) >= 2  # once at first, once more on the new connection
    health = httpx.get(f"{worker.url}/healthz", timeout=5)
    assert (health.status_code, health.json()["parts"]["binance-futures"]) == (200, True)

    history = keep_publishing(lambda: publish(exchange, "futures", symbol, "93.9", "94.1"),
                              lambda: closed_history(db, uid, "p"))
    assert (history["closeReason"], history["closePrice"]) == ("stop_loss", 93.9)
    # gross 50 × (93.9 − 100) = −305, fee 50 × 93.9 × 0.0006 = 2.817, credit 192.183
    assert balance_of(db, uid) == D("9689.183")
