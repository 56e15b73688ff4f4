"""Per-user limits (`config/limits`): reading them, and counting uses in fixed windows."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

from cogmora_backend.limits import AI_RUNS, PROPOSE_PLAN, take
from cogmora_core.config import LimitsConfig
from tests.support.memory import MemoryDatabase

NOON = datetime(2026, 11, 30, 12, 0, 30, tzinfo=UTC)


def test_uses_are_counted_per_window_and_refused_past_the_limit() -> None:
    db = MemoryDatabase({})
    assert take(db, "u1", {PROPOSE_PLAN: 2}, NOON) is None
    assert take(db, "u1", {PROPOSE_PLAN: 2}, NOON + timedelta(seconds=10)) is None
    refused = take(db, "u1", {PROPOSE_PLAN: 2}, NOON + timedelta(seconds=20))
    assert refused is not None
    # The minute began at 12:00:00; 12:00:50 leaves 10 s.
    assert (refused.reason, refused.retry_after) == ("too_many_requests", 10)
    assert refused.detail == "2 of 2 used in this minute"
    # Another user counts apart; the next minute starts again.
    assert take(db, "u2", {PROPOSE_PLAN: 2}, NOON) is None
    assert take(db, "u1", {PROPOSE_PLAN: 2}, NOON + timedelta(seconds=40)) is None
    assert db.documents["usage/u1"][PROPOSE_PLAN]["count"] == 1


def test_a_refused_use_counts_nothing_of_any_kind() -> None:
    db = MemoryDatabase({})
    assert take(db, "u1", {AI_RUNS: 1}, NOON) is None
    refused = take(db, "u1", {PROPOSE_PLAN: 2, AI_RUNS: 1}, NOON)
    assert refused is not None and refused.reason == "too_many_ai_runs"
    assert refused.retry_after == 12 * 3600 - 30  # until 00:00 UTC
    assert PROPOSE_PLAN not in db.documents["usage/u1"]


def test_the_defaults_are_the_contracts() -> None:
    limits = LimitsConfig.from_document(None)
    assert (limits.max_active_triggers, limits.max_open_positions,
            limits.max_watchlist_symbols, limits.min_ai_interval_minutes,
            limits.max_ai_runs_per_day, limits.max_propose_plan_per_minute,
            limits.api_requests_per_minute) == (200, 200, 50, 15, 96, 2, 120)


def test_a_lifted_api_limit_is_taken_as_set() -> None:
    # The Schemathesis run lifts the API limit to a million for its one user.
    assert LimitsConfig.from_document(
        {"apiRequestsPerMinute": 1_000_000}).api_requests_per_minute == 1_000_000
    assert LimitsConfig.from_document(
        {"apiRequestsPerMinute": 1_000_001}).api_requests_per_minute == 120
