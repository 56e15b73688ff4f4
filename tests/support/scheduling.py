"""A database that changes something between mainScheduler's due queries and its claims."""

from __future__ import annotations

import threading
from collections.abc import Callable, Iterator
from typing import Any

from cogmora_backend.store import Database, Snapshot


class ChangedAfterTheQueries:
    """`database`, except that `change` runs once, when the fan-out's two due queries
    have both sent their last user: before any claim is written, when there are fewer
    users than a claim batch (they are then claimed once the queries end)."""

    def __init__(self, database: Database, change: Callable[[], None]) -> None:
        self._database = database
        self._change: Callable[[], None] | None = change
        self._streamed = 0
        self._lock = threading.Lock()

    def stream(self, spec: Any, equals: tuple[Any, ...] = (), bound: Any = None, *,
               limit: int | None = None,
               fields: tuple[str, ...] | None = None) -> Iterator[Snapshot]:
        yield from self._database.stream(spec, equals, bound, limit=limit, fields=fields)
        with self._lock:
            self._streamed += 1
            change = self._change if self._streamed == 2 else None
            if change is not None:
                self._change = None
        if change is not None:
            change()

    def __getattr__(self, name: str) -> Any:
        return getattr(self._database, name)
