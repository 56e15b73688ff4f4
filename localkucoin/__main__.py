"""`python -m localkucoin`: run every venue's local stand-in (`venues.LOCAL_VENUES`) with prices.

By default it replays the recorded SOLUSDTM day on the futures market and
plays deterministic random walks for XBTUSDTM, ETHUSDTM (futures) and
BTC-USDT, ETH-USDT (spot), on Backpack for SOL_USDC and SOL_USDC_PERP, and on
Binance for BTCUSDT spot and BTCUSDT, ETHUSDT perpetuals (bookTicker; a
markPrice a second for the perpetuals). Control it over HTTP:
`POST /_control/tick`, `drop`, `close`, `stall_pongs`, `token_failures`,
`garbage`, `errors`, `state` on either KuCoin market's port; `tick`, `mark`,
`drop`, `close`, `garbage`, `state` on Backpack's; the same and `shutdown`,
`list`, `unlist` on either Binance market's.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import signal
import time
from decimal import Decimal
from pathlib import Path

from cogmora_core.venues import Venue
from localkucoin.backpack import LocalBackpack
from localkucoin.binance import LocalBinance
from localkucoin.replay import DEFAULT_REPLAY, Quote, play, random_walk, recorded_day
from localkucoin.server import LocalKucoin
from localkucoin.venues import LOCAL_VENUES, BackpackVenue, BinanceVenue, KucoinVenue

WALKS = {
    "futures": {"XBTUSDTM": Decimal("60000.0"), "ETHUSDTM": Decimal("3000.00")},
    "spot": {"BTC-USDT": Decimal("87956.1"), "ETH-USDT": Decimal("3000.00")},
    "backpack": {"SOL_USDC": Decimal("140.00"), "SOL_USDC_PERP": Decimal("140.00")},
    "binance-spot": {"BTCUSDT": Decimal("87956.10")},
    "binance-futures": {"BTCUSDT": Decimal("87950.0"), "ETHUSDT": Decimal("3000.00")},
}


async def publish_marks(market: LocalBackpack | LocalBinance, symbol: str,
                        latest: dict[str, Quote], funding_rate: Decimal = Decimal("0.0000125"),
                        interval_hours: int = 1) -> None:
    """Publish a markPrice for a perpetual once a second: the mark is its latest price."""
    period = interval_hours * 3600
    while True:
        quote = latest.get(symbol)
        if quote is not None:
            next_funding_ms = (int(time.time()) // period + 1) * period * 1000
            await market.publish_mark(symbol, quote.price, funding_rate, next_funding_ms)
        await asyncio.sleep(1.0)


async def serve(args: argparse.Namespace) -> None:
    ports = {Venue.KUCOIN: {"spot_port": args.spot_port, "futures_port": args.futures_port},
             Venue.BACKPACK: {"port": args.backpack_port},
             Venue.BINANCE: {"spot_port": args.binance_spot_port,
                             "futures_port": args.binance_futures_port}}
    venues = {venue: factory(**ports.get(venue, {})) for venue, factory in LOCAL_VENUES.items()}
    for local in venues.values():
        await local.start()
        for name, value in local.environ().items():
            print(f"{name}={value}", flush=True)
    kucoin, backpack_venue = venues[Venue.KUCOIN], venues[Venue.BACKPACK]
    binance = venues[Venue.BINANCE]
    assert isinstance(kucoin, KucoinVenue) and isinstance(backpack_venue, BackpackVenue)
    assert isinstance(binance, BinanceVenue)
    spot, futures, backpack = kucoin.spot, kucoin.futures, backpack_venue.backpack
    latest: dict[str, Quote] = {}
    tasks = [asyncio.create_task(play(futures, "SOLUSDTM", recorded_day(args.replay),
                                      args.speed, latest))]
    if not args.replay_only:
        markets: tuple[tuple[LocalKucoin | LocalBackpack | LocalBinance, dict[str, Decimal]],
                       ...] = (
            (futures, WALKS["futures"]), (spot, WALKS["spot"]), (backpack, WALKS["backpack"]),
            (binance.spot, WALKS["binance-spot"]), (binance.futures, WALKS["binance-futures"]))
        for seed, (market, walks) in enumerate(markets):
            # Binance writes spot and perpetual symbols alike: each market its own prices.
            prices = {} if isinstance(market, LocalBinance) else latest
            for n, (symbol, start) in enumerate(walks.items()):
                tasks.append(asyncio.create_task(play(
                    market, symbol, random_walk(start, seed * 10 + n), args.speed, prices)))
                if market is binance.futures:
                    tasks.append(asyncio.create_task(publish_marks(
                        market, symbol, prices, Decimal("0.0001"), interval_hours=8)))
        tasks.append(asyncio.create_task(publish_marks(backpack, "SOL_USDC_PERP", latest)))
    spot.latest = latest  # type: ignore[attr-defined]
    futures.latest = latest  # type: ignore[attr-defined]
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for signum in (signal.SIGTERM, signal.SIGINT):
        loop.add_signal_handler(signum, stop.set)
    await stop.wait()
    for task in tasks:
        task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await asyncio.gather(*tasks)
    for local in venues.values():
        await local.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--spot-port", type=int, default=9501)
    parser.add_argument("--futures-port", type=int, default=9502)
    parser.add_argument("--backpack-port", type=int, default=9503)
    parser.add_argument("--binance-spot-port", type=int, default=9504)
    parser.add_argument("--binance-futures-port", type=int, default=9505)
    parser.add_argument("--replay", type=Path, default=DEFAULT_REPLAY)
    parser.add_argument("--speed", type=float, default=10.0,
                        help="steps per second (the recorded day has one step per second)")
    parser.add_argument("--replay-only", action="store_true", help="no scripted walks")
    asyncio.run(serve(parser.parse_args()))


if __name__ == "__main__":
    main()
