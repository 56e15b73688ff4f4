"""Per-user limits (`config/limits`, DESIGN.md §2): reading them, counting against them."""

from __future__ import annotations

import logging

from cogmora_backend import paths
from cogmora_backend.store import Database
from cogmora_core.config import LimitsConfig

log = logging.getLogger(__name__)


def load_limits(database: Database) -> LimitsConfig:
    """Return the limits from `config/limits`, defaults where absent or invalid."""
    limits = LimitsConfig.from_document(database.read(paths.CONFIG_LIMITS))
    for problem in limits.problems:
        log.warning("config/limits ignored a field", extra={"problem": problem})
    return limits
