"""JSON logs that Cloud Logging reads (severity, message, structured fields)."""

from __future__ import annotations

import json
import logging
import sys
from typing import Any

_STANDARD = frozenset(vars(logging.LogRecord("", 0, "", 0, "", None, None))) | {
    "message",
    "asctime",
}


class JsonFormatter(logging.Formatter):
    """Format a record as one JSON line with Cloud Logging's `severity` field."""

    def format(self, record: logging.LogRecord) -> str:
        """Return the record as a JSON line; `extra` fields become top-level keys."""
        entry: dict[str, Any] = {
            "severity": record.levelname,
            "message": record.getMessage(),
            "logger": record.name,
        }
        for key, value in vars(record).items():
            if key not in _STANDARD:
                entry[key] = value
        if record.exc_info:
            entry["exception"] = self.formatException(record.exc_info)
        return json.dumps(entry, default=str)


PROJECT_LOGGERS = ("cogmora_core", "cogmora_backend", "worker")


def configure_logging(level: int = logging.INFO, names: tuple[str, ...] = PROJECT_LOGGERS) -> None:
    """Send the project's log records to stdout as JSON lines (once per process)."""
    for name in names:
        logger = logging.getLogger(name)
        if any(isinstance(h.formatter, JsonFormatter) for h in logger.handlers):
            continue
        handler = logging.StreamHandler(sys.stdout)
        handler.setFormatter(JsonFormatter())
        logger.addHandler(handler)
        logger.setLevel(level)
        logger.propagate = False
