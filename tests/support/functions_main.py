"""`functions/main.py` as a module, as the Functions runtime loads it (from its own folder)."""

from __future__ import annotations

import importlib.util
import sys
from pathlib import Path
from types import ModuleType

MAIN = Path(__file__).resolve().parents[2] / "functions" / "main.py"


def functions_main() -> ModuleType:
    """Import `functions/main.py` once (the repository's environment installs only its
    packages, not the entry point) and return it."""
    loaded = sys.modules.get("main")
    if loaded is not None and Path(loaded.__file__ or "").resolve() == MAIN:
        return loaded
    spec = importlib.util.spec_from_file_location("main", MAIN)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    sys.modules["main"] = module
    spec.loader.exec_module(module)
    return module
