"""Worker settings, from the environment (DESIGN.md §4)."""

from __future__ import annotations

import os
import socket
import zlib
from collections.abc import Mapping
from dataclasses import dataclass, field


def _float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    return float(raw) if raw else default


@dataclass(frozen=True)
class Settings:
    """Everything the worker reads from its environment."""

    #: The environment the venue adapters read their own settings from
    #: (`worker/venues/<venue>/__init__.py` names each variable and its default).
    environ: Mapping[str, str] = field(default_factory=dict, compare=False, repr=False)
    port: int = 8080
    #: Seconds between checks of the index against Firestore (a count per query).
    resync_seconds: float = 300.0
    #: Seconds between full re-reads, whatever the counts say.
    full_resync_seconds: float = 21600.0
    #: Seconds between writes of the trailing stops' peaks that moved.
    peak_persist_seconds: float = 1.0
    #: Seconds between writes of each market's last tick time (`workerState`).
    heartbeat_seconds: float = 2.0
    #: The longest gap recovered from candles after a restart or reconnect.
    gap_max_seconds: float = 6 * 3600.0
    #: Seconds a symbol stays subscribed after the last thing on it (a level, an order or
    #: close waiting for a price, a trailing stop, a position, a mark in flight) is gone.
    subscription_linger_seconds: float = 60.0
    #: Batches of marks written at once.
    mark_concurrency: int = 16
    #: Writes in one atomic batch of marks at most, ≤ 500 (a position's mark is one
    #: write, a trigger's two; a burst starts with one mark and doubles).
    mark_batch: int = 500
    #: Seconds from SIGTERM to exit, whatever Firestore does: Cloud Run kills the
    #: instance 10 s after SIGTERM, so the worker is gone before that.
    stop_grace_seconds: float = 8.0
    #: Instances sharing the load, and this instance's shard (0-based): it arms only
    #: documents whose symbol hashes to its shard (see `owns`).
    shard_count: int = 1
    shard_index: int = 0
    #: Recorded on every mark as `source`.
    worker_id: str = field(default_factory=lambda: f"{socket.gethostname()}-{os.getpid()}")

    @classmethod
    def from_env(cls) -> Settings:
        """Read the settings from the environment, defaults where unset."""
        defaults = cls()
        return cls(
            environ=dict(os.environ),
            port=int(os.environ.get("PORT") or defaults.port),
            resync_seconds=_float("RESYNC_SECONDS", defaults.resync_seconds),
            full_resync_seconds=_float("FULL_RESYNC_SECONDS", defaults.full_resync_seconds),
            peak_persist_seconds=_float("PEAK_PERSIST_SECONDS",
                                        defaults.peak_persist_seconds),
            heartbeat_seconds=_float("HEARTBEAT_SECONDS", defaults.heartbeat_seconds),
            gap_max_seconds=_float("GAP_MAX_SECONDS", defaults.gap_max_seconds),
            subscription_linger_seconds=_float("SUBSCRIPTION_LINGER_SECONDS",
                                               defaults.subscription_linger_seconds),
            stop_grace_seconds=_float("STOP_GRACE_SECONDS", defaults.stop_grace_seconds),
            mark_concurrency=int(os.environ.get("MARK_CONCURRENCY")
                                 or defaults.mark_concurrency),
            mark_batch=int(os.environ.get("MARK_BATCH") or defaults.mark_batch),
            worker_id=os.environ.get("WORKER_ID") or defaults.worker_id,
            shard_count=int(os.environ.get("SHARD_COUNT") or 1),
            shard_index=int(os.environ.get("SHARD_INDEX") or 0),
        )

    def __post_init__(self) -> None:
        if self.shard_count < 1 or not 0 <= self.shard_index < self.shard_count:
            raise ValueError(f"shard {self.shard_index} of {self.shard_count} is not a shard")

    def owns(self, symbol: object) -> bool:
        """Return whether this instance watches `symbol` (a stable hash picks one shard).

        A document without a readable symbol belongs to shard 0, which reports it.
        """
        if self.shard_count == 1:
            return True
        if not isinstance(symbol, str):
            return self.shard_index == 0
        return zlib.crc32(symbol.encode()) % self.shard_count == self.shard_index
