"""The venue registry: the one place that names every venue the worker trades on.

Each entry is a venue folder's `Adapter`. The worker builds its feeds, candle
fetches and listing lookups from these; a unit test checks that they cover
exactly the contract's venues (`cogmora_core.venues.Venue`).
"""

from __future__ import annotations

from worker.venues import backpack, binance, kucoin
from worker.venues.base import VenueAdapter

ADAPTERS: tuple[type[VenueAdapter], ...] = (kucoin.Adapter, backpack.Adapter, binance.Adapter)
