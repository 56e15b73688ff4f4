"""The local exchange's venues: one local stand-in per venue of the contract, by `Venue`.

Each entry starts the venue's local servers, says which worker settings point
at them (`environ`: the same variables the venue's adapter in
`worker/venues/<venue>/` reads) and which server carries a market. Tests, the
local run and the benchmarks start every registered venue; a unit test checks
that the entries cover exactly `cogmora_core.venues.Venue`.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable
from typing import ClassVar

from cogmora_core.venues import SymbolType, Venue
from localkucoin.backpack import LocalBackpack
from localkucoin.binance import LocalBinance
from localkucoin.server import LocalKucoin
from localkucoin.serving import LocalServer


class LocalVenue(ABC):
    """A venue's local servers: started and stopped together."""

    venue: ClassVar[Venue]

    @abstractmethod
    def servers(self) -> list[LocalServer]:
        """Return the venue's servers, each once."""

    @abstractmethod
    def server(self, market: SymbolType) -> LocalServer:
        """Return the server that carries `market`."""

    @abstractmethod
    def environ(self) -> dict[str, str]:
        """Return the worker's settings that point at these servers."""

    async def start(self) -> None:
        """Start every server (ephemeral ports are replaced by the bound ones)."""
        for server in self.servers():
            await server.serve()

    async def stop(self) -> None:
        """Stop every server."""
        for server in self.servers():
            await server.stop()


class KucoinVenue(LocalVenue):
    """KuCoin: one server per market (spot and futures have separate APIs)."""

    venue = Venue.KUCOIN

    def __init__(self, spot_port: int = 0, futures_port: int = 0, fast: bool = False) -> None:
        interval, timeout = (2000, 2000) if fast else (18000, 10000)
        self.spot = LocalKucoin("spot", port=spot_port, ping_interval_ms=interval,
                                ping_timeout_ms=timeout)
        self.futures = LocalKucoin("futures", port=futures_port, ping_interval_ms=interval,
                                   ping_timeout_ms=timeout)

    def servers(self) -> list[LocalServer]:
        """Return the spot and the futures server."""
        return [self.spot, self.futures]

    def server(self, market: SymbolType) -> LocalServer:
        """Return the server of `market`."""
        return self.spot if market is SymbolType.SPOT else self.futures

    def environ(self) -> dict[str, str]:
        """Return `KUCOIN_SPOT_API` and `KUCOIN_FUTURES_API`."""
        return {"KUCOIN_SPOT_API": self.spot.base_url,
                "KUCOIN_FUTURES_API": self.futures.base_url}


class BackpackVenue(LocalVenue):
    """Backpack: one server carrying both markets."""

    venue = Venue.BACKPACK

    def __init__(self, port: int = 0, fast: bool = False) -> None:
        self.backpack = LocalBackpack(port=port)

    def servers(self) -> list[LocalServer]:
        """Return the one server."""
        return [self.backpack]

    def server(self, market: SymbolType) -> LocalServer:
        """Return the one server (both markets)."""
        return self.backpack

    def environ(self) -> dict[str, str]:
        """Return `BACKPACK_WS_URL` and `BACKPACK_API`."""
        return {"BACKPACK_WS_URL": self.backpack.ws_url, "BACKPACK_API": self.backpack.base_url}


class BinanceVenue(LocalVenue):
    """Binance: one server per market (spot and USDⓈ-M futures are different hosts)."""

    venue = Venue.BINANCE

    def __init__(self, spot_port: int = 0, futures_port: int = 0, fast: bool = False) -> None:
        pings = 2.0 if fast else None
        self.spot = LocalBinance("spot", port=spot_port, ping_interval=pings)
        self.futures = LocalBinance("futures", port=futures_port, ping_interval=pings)

    def servers(self) -> list[LocalServer]:
        """Return the spot and the futures server."""
        return [self.spot, self.futures]

    def server(self, market: SymbolType) -> LocalServer:
        """Return the server of `market`."""
        return self.spot if market is SymbolType.SPOT else self.futures

    def environ(self) -> dict[str, str]:
        """Return `BINANCE_SPOT_WS`, `BINANCE_SPOT_API`, `BINANCE_FUTURES_WS` and
        `BINANCE_FUTURES_API`."""
        return {"BINANCE_SPOT_WS": self.spot.ws_url, "BINANCE_SPOT_API": self.spot.base_url,
                "BINANCE_FUTURES_WS": self.futures.ws_url,
                "BINANCE_FUTURES_API": self.futures.base_url}


#: Every venue's local stand-in, by venue (keyword options: ports, `fast` pings for tests).
LOCAL_VENUES: dict[Venue, Callable[..., LocalVenue]] = {
    Venue.KUCOIN: KucoinVenue,
    Venue.BACKPACK: BackpackVenue,
    Venue.BINANCE: BinanceVenue,
}
