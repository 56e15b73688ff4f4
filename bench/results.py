"""Where benchmarks leave their figures for bench/report.py: .cache/bench/<name>.json.

$COGMORA_BENCH_DIR moves them (QUICK=1 scripts/bench-all.sh does, so a check
of the pipeline never overwrites the full run's figures).
"""

from __future__ import annotations

import contextlib
import io
import json
import os
import sys
from collections.abc import Iterator
from pathlib import Path
from typing import Any

DIR = Path(os.environ.get("COGMORA_BENCH_DIR")
           or Path(__file__).resolve().parents[1] / ".cache" / "bench")


def record(name: str, figures: dict[str, Any], text: str) -> None:
    """Save a benchmark's key figures and the table it printed."""
    DIR.mkdir(parents=True, exist_ok=True)
    (DIR / f"{name}.json").write_text(json.dumps({"figures": figures, "text": text},
                                                 indent=2, default=str))


def load(name: str) -> dict[str, Any] | None:
    """Return what a benchmark saved, or None if it has not run."""
    path = DIR / f"{name}.json"
    return json.loads(path.read_text()) if path.exists() else None


@contextlib.contextmanager
def tee() -> Iterator[io.StringIO]:
    """Print as usual and keep a copy of what was printed."""
    copy = io.StringIO()
    original = sys.stdout

    class Both(io.TextIOBase):
        def write(self, text: str) -> int:
            copy.write(text)
            return original.write(text)

        def flush(self) -> None:
            original.flush()

    sys.stdout = Both()
    try:
        yield copy
    finally:
        sys.stdout = original
