"""The functions deploy directory carries everything main.py imports.

`firebase deploy` uploads only `functions/` (less its ignore list) and discovers
the triggers by importing `main.py` from it with the deployed virtualenv. This
builds that directory in isolation and discovers the functions the same way.
"""

from __future__ import annotations

import fnmatch
import json
import shutil
import subprocess
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

DISCOVER = """
import json, os, sys
from firebase_functions.private.serving import get_functions
functions = get_functions()
import cogmora_backend.api.app  # the api function's app, imported on its first request
here = os.getcwd()
print(json.dumps({
    "functions": sorted(functions),
    "events": {name: (fn.__firebase_endpoint__.eventTrigger or {}).get("eventType")
               for name, fn in functions.items()},
    "scheduled": sorted(name for name, fn in functions.items()
                        if fn.__firebase_endpoint__.scheduleTrigger),
    "core_from": sys.modules["cogmora_core"].__file__,
    "backend_from": sys.modules["cogmora_backend"].__file__,
    "api_from": sys.modules["cogmora_backend.api.app"].__file__,
    "https": sorted(name for name, fn in functions.items()
                    if fn.__firebase_endpoint__.httpsTrigger is not None),
    "here": here,
}))
"""


def build_deploy_directory(target: Path) -> None:
    """Copy `functions/` to `target` leaving out what firebase.json's ignore list names."""
    config = json.loads((ROOT / "firebase.json").read_text())["functions"][0]
    ignore = [*config["ignore"], "node_modules", ".git", "firebase-debug.log"]
    source = ROOT / config["source"]

    def ignored(directory: str, names: list[str]) -> set[str]:
        relative = Path(directory).relative_to(source)
        return {
            name
            for name in names
            if any(
                fnmatch.fnmatch(name, pattern) or fnmatch.fnmatch(str(relative / name), pattern)
                for pattern in ignore
            )
        }

    shutil.copytree(source, target, ignore=ignored)


def test_deploy_directory_imports_main_in_isolation(tmp_path: Path) -> None:
    deploy = tmp_path / "functions"
    build_deploy_directory(deploy)
    assert not (deploy / "venv").exists()

    result = subprocess.run(
        [str(ROOT / "functions" / "venv" / "bin" / "python"), "-I", "-c", DISCOVER],
        cwd=deploy,
        capture_output=True,
        text=True,
        timeout=120,
        env={"PATH": "/usr/bin:/bin", "HOME": str(tmp_path)},
    )

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert found["functions"] == [
        "api", "applyFunding", "auditLedger", "closePositionHandler", "initializeAccount",
        "mainScheduler", "migrateLedger", "openPositionHandler", "proposePlan",
        "reconcileMarks", "runAgentChunk", "runAuditPage", "runLedgerAudit", "runWatchlistChunk",
        "scheduleAutomation", "watchOperations", "workerShards",
    ]
    assert found["events"]["scheduleAutomation"] == "google.cloud.firestore.document.v1.written"
    assert found["events"]["openPositionHandler"] == "google.cloud.firestore.document.v1.created"
    assert found["events"]["closePositionHandler"] == "google.cloud.firestore.document.v1.updated"
    assert found["events"]["initializeAccount"] == "google.cloud.firestore.document.v1.created"
    assert found["events"]["applyFunding"] == "google.cloud.firestore.document.v1.created"
    assert found["scheduled"] == [
        "auditLedger", "mainScheduler", "reconcileMarks", "watchOperations",
    ]
    assert found["core_from"].startswith(str(deploy))
    assert found["backend_from"].startswith(str(deploy))
    assert found["api_from"].startswith(str(deploy))
    assert found["https"] == ["api", "workerShards"]
