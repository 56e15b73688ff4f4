"""The KuCoin connection manager against the local KuCoin, over real WebSockets."""

from __future__ import annotations

import asyncio
from decimal import Decimal as D
from typing import Any

from cogmora_core.model import Tick
from localkucoin.server import LocalKucoin
from tests.support.aio import eventually
from worker.metrics import Metrics
from worker.venues.base import Funding, SubscriptionLimits
from worker.venues.kucoin.feed import KucoinFeed

FAST = {"reconnect_initial": 0.05, "reconnect_max": 0.3, "resubscribe_delay": 0.1}


async def started(market: str = "spot", topic_limit: int = 300, **server: int):
    exchange = LocalKucoin(market, ping_interval_ms=server.get("ping", 400),
                           ping_timeout_ms=server.get("timeout", 300),
                           topic_limit=server.get("server_limit", 300))
    api = await exchange.start()
    ticks: list[Tick] = []
    metrics = Metrics()
    feed = KucoinFeed(market, api, ticks.append, metrics, topic_limit=topic_limit, **FAST)
    feed.start()
    return exchange, feed, ticks, metrics


def value(metrics: Metrics, name: str, **labels: str) -> float:
    return metrics.registry.get_sample_value(name, labels) or 0.0


async def receives(exchange: LocalKucoin, ticks: list[Tick], symbol: str, price: str) -> None:
    """Publish until the feed has the tick (a fresh subscription may still be in flight)."""
    async def published() -> bool:
        await exchange.publish(symbol, D(price), D(price) - 1, D(price) + 1)
        await asyncio.sleep(0.02)
        return any(t.symbol == symbol and t.price == D(price) for t in ticks)

    for _ in range(250):
        if await published():
            return
    raise AssertionError(f"{symbol} {price} never arrived")


def test_subscribes_receives_exact_ticks_and_unsubscribes_without_reconnecting() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started()
        feed.update_desired({"BTC-USDT", "ETH-USDT"})
        await eventually(lambda: exchange.subscribed() == {"BTC-USDT", "ETH-USDT"})
        await exchange.publish("BTC-USDT", D("87956"), D("87955.9"), D("87956.1"))
        await eventually(lambda: ticks)
        assert ticks[0] == Tick("BTC-USDT", D("87956"), D("87955.9"), D("87956.1"),
                                ticks[0].time_ms)
        feed.update_desired({"ETH-USDT"})
        await eventually(lambda: exchange.subscribed() == {"ETH-USDT"})
        await eventually(lambda: feed.subscribed() == {"ETH-USDT"})
        assert exchange.connections == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_reconnects_and_resubscribes_after_a_drop_a_ping_timeout_and_a_server_close() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started(market="futures")
        symbols = {"XBTUSDTM", "SOLUSDTM", "ETHUSDTM"}
        feed.update_desired(symbols)
        await eventually(lambda: exchange.subscribed() == symbols)

        await exchange.drop_connections()
        await eventually(lambda: exchange.connections == 2 and exchange.subscribed() == symbols)
        await receives(exchange, ticks, "SOLUSDTM", "140.5")

        exchange.stall_pongs = True
        await eventually(lambda: exchange.connections >= 3, timeout=15)
        exchange.stall_pongs = False
        await eventually(lambda: exchange.subscribed() == symbols)
        await receives(exchange, ticks, "XBTUSDTM", "60000")

        before = exchange.connections
        await exchange.close_connections()
        await eventually(lambda: exchange.connections > before and
                         exchange.subscribed() == symbols)
        await receives(exchange, ticks, "ETHUSDTM", "3000.25")
        assert value(metrics, "cogmora_reconnects_total", feed="kucoin-futures-0") >= 3
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_token_429_then_500_then_success() -> None:
    async def scenario() -> None:
        exchange = LocalKucoin("spot")
        exchange.token_failures.extend([429, 500])
        api = await exchange.start()
        metrics = Metrics()
        ticks: list[Tick] = []
        feed = KucoinFeed("spot", api, ticks.append, metrics, **FAST)
        feed.tokens.initial_delay = 0.05
        feed.update_desired({"BTC-USDT"})
        feed.start()
        await eventually(lambda: exchange.subscribed() == {"BTC-USDT"}, timeout=15)
        assert exchange.token_requests == 3
        for outcome in ("429", "500", "ok"):
            assert value(metrics, "cogmora_token_requests_total", feed="kucoin-spot",
                         outcome=outcome) == 1
        await receives(exchange, ticks, "BTC-USDT", "100")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_error_and_garbage_frames_are_counted_and_survived() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started()
        feed.update_desired({"BTC-USDT"})
        await eventually(lambda: exchange.subscribed() == {"BTC-USDT"})
        await exchange.send_garbage()
        await exchange.send_error_frames()
        await receives(exchange, ticks, "BTC-USDT", "200")
        assert exchange.connections == 1
        for reason in ("invalid_json", "not_an_object", "unknown_type", "unknown_topic"):
            assert value(metrics, "cogmora_frames_rejected_total", feed="kucoin-spot-0",
                         reason=reason) == 1
        assert value(metrics, "cogmora_exchange_errors_total", feed="kucoin-spot-0",
                     code="509") == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_opens_another_connection_past_the_topic_limit() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started(topic_limit=3, server_limit=3)
        symbols = {f"C{i}-USDT" for i in range(7)}
        feed.update_desired(symbols)
        await eventually(lambda: exchange.subscribed() == symbols)
        assert len(feed.connections) == 3
        assert all(len(s.symbols) <= 3 for s in exchange.sessions)
        await receives(exchange, ticks, "C6-USDT", "500")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_a_symbol_the_exchange_refuses_past_its_limit_is_retried_not_fatal() -> None:
    async def scenario() -> None:
        exchange, feed, _, metrics = await started(topic_limit=5, server_limit=2)
        feed.update_desired({"A-USDT", "B-USDT", "C-USDT"})
        await eventually(lambda: value(metrics, "cogmora_exchange_errors_total",
                                       feed="kucoin-spot-0", code="509") >= 2)
        assert feed.connections[0].connected
        exchange.topic_limit = 5
        await eventually(lambda: exchange.subscribed() == {"A-USDT", "B-USDT", "C-USDT"})
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_reconnects_with_a_new_token_when_the_token_expires() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, _ = await started()
        feed.tokens.max_age = 0.5
        feed.update_desired({"BTC-USDT"})
        await eventually(lambda: exchange.connections >= 3 and exchange.token_requests >= 3)
        await eventually(lambda: exchange.subscribed() == {"BTC-USDT"})
        feed.tokens.max_age = 3600
        await receives(exchange, ticks, "BTC-USDT", "100")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_an_error_code_no_parser_foresaw_keeps_the_connection() -> None:
    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started()
        feed.update_desired({"BTC-USDT"})
        await eventually(lambda: exchange.subscribed() == {"BTC-USDT"})
        # "²".isdigit() is True, int("²") raises: this frame once ended the connection task.
        assert await exchange.send_raw(
            '{"type":"error","id":"77","code":"²","data":"odd"}') == 1
        await receives(exchange, ticks, "BTC-USDT", "300")
        assert exchange.connections == 1
        assert value(metrics, "cogmora_exchange_errors_total", feed="kucoin-spot-0",
                     code="None") == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_any_exception_in_a_connection_reconnects_it(monkeypatch: Any) -> None:
    from worker.venues.kucoin import feed as kucoin

    parse = kucoin.parse_frame
    failures = [RuntimeError("a bug no test foresaw")]

    def failing_once(raw: str | bytes, market: str) -> object:
        frame = parse(raw, market)
        if isinstance(frame, Tick) and failures:
            raise failures.pop()
        return frame

    monkeypatch.setattr(kucoin, "parse_frame", failing_once)

    async def scenario() -> None:
        exchange, feed, ticks, metrics = await started()
        feed.update_desired({"BTC-USDT"})
        await eventually(lambda: exchange.subscribed() == {"BTC-USDT"})
        await receives(exchange, ticks, "BTC-USDT", "400")
        assert not failures  # the bug happened, and ticks flow again after a reconnect
        assert value(metrics, "cogmora_exchange_errors_total", feed="kucoin-spot-0",
                     code="unexpected") == 1
        assert value(metrics, "cogmora_reconnects_total", feed="kucoin-spot-0") == 1
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())


def test_a_reconnect_resubscribes_everything_within_the_venues_message_limit() -> None:
    """KuCoin refuses (509) what passes its uplink limit: a reconnect that sent every
    subscription of a full connection at once would lose most of them."""
    async def scenario() -> None:
        # Scaled down in time: 30 messages a second (KuCoin: 100 per 10 s); the feed
        # paces by its limits (here 10 at once, then 15 a second, under the pings).
        exchange = LocalKucoin("futures", ping_interval_ms=400, ping_timeout_ms=300,
                               uplink_limit=30, uplink_window=1.0)
        api = await exchange.start()
        ticks: list[Tick] = []
        funding: list[Funding] = []
        limits = SubscriptionLimits(messages_per_second=15, burst=10, topics_per_symbol=2)
        feed = KucoinFeed("futures", api, ticks.append, Metrics(), on_funding=funding.append,
                          limits=limits, **FAST)
        feed.start()
        symbols = {f"S{n:02}USDTM" for n in range(40)}  # 80 subscribe messages
        feed.update_desired(symbols)
        await eventually(lambda: feed.subscribed() == symbols, timeout=20)
        await exchange.drop_connections()
        await eventually(lambda: exchange.connections == 2, timeout=5)
        await eventually(lambda: feed.subscribed() == symbols, timeout=20)
        assert exchange.subscribed() == symbols
        assert exchange.refused_for_rate == 0
        await receives(exchange, ticks, "S39USDTM", "101")
        await feed.stop()
        await exchange.stop()

    asyncio.run(scenario())
