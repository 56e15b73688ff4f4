"""Per-user limits (`config/limits`, DESIGN.md §2): reading them, counting against them."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from cogmora_backend import paths
from cogmora_backend.store import Database, Transaction
from cogmora_core.config import LimitsConfig
from cogmora_core.errors import Reason

log = logging.getLogger(__name__)


def load_limits(database: Database) -> LimitsConfig:
    """Return the limits from `config/limits`, defaults where absent or invalid."""
    limits = LimitsConfig.from_document(database.read(paths.CONFIG_LIMITS))
    for problem in limits.problems:
        log.warning("config/limits ignored a field", extra={"problem": problem})
    return limits


#: Windows of the counted uses: the AI agent's runs per UTC day, `proposePlan` per minute.
AI_RUNS, PROPOSE_PLAN = "aiRuns", "proposePlan"
WINDOW_SECONDS = {AI_RUNS: 86_400, PROPOSE_PLAN: 60}


@dataclass(frozen=True)
class Refused:
    """A use past its limit: why, and in how many seconds the window opens again."""

    reason: str
    detail: str
    retry_after: int


def take(database: Database, uid: str, uses: dict[str, int], now: datetime) -> Refused | None:
    """Count one use of each kind in `uses` (kind → limit), or refuse all of them.

    The counts live in `usage/{uid}` (backend only: the rules give clients no
    access, so a user cannot reset them), one fixed window per kind, in one
    transaction: racing calls count once each.
    """
    path = f"usage/{uid}"
    seconds = int(now.timestamp())

    def work(tx: Transaction) -> Refused | None:
        counts = tx.get(path) or {}
        fields: dict[str, Any] = {}
        for kind, limit in uses.items():
            window = WINDOW_SECONDS[kind]
            start = seconds - seconds % window
            used = counts.get(kind)
            count = used.get("count") if isinstance(used, dict) and used.get(
                "windowStart") == start else 0
            count = count if isinstance(count, int) else 0
            if count >= limit:
                return Refused(_REASONS[kind], f"{count} of {limit} used in this "
                               f"{'day (UTC)' if window == 86_400 else 'minute'}",
                               start + window - seconds)
            fields[kind] = {"windowStart": start, "count": count + 1}
        tx.set(path, fields, merge=True)
        return None

    return database.run(work)


_REASONS = {AI_RUNS: Reason.TOO_MANY_AI_RUNS, PROPOSE_PLAN: Reason.TOO_MANY_REQUESTS}
