"""The worker image carries the same trading core as the functions.

No Docker engine runs on the project's machines, so this lays out the files
as the Dockerfile's COPY lines do and imports the worker from that layout
with the repository's interpreter, checking which copy of the core it got.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

PROBE = """
import json, sys
import worker.app, cogmora_core, cogmora_backend
print(json.dumps({"core": cogmora_core.__file__, "backend": cogmora_backend.__file__,
                  "worker": worker.app.__file__}))
"""


def copy_lines() -> list[tuple[str, str]]:
    """Return (source, destination) of the Dockerfile's COPY lines."""
    pairs = []
    for line in (ROOT / "Dockerfile").read_text().splitlines():
        if line.startswith("COPY "):
            source, destination = line.split()[1:3]
            pairs.append((source, destination))
    return pairs


def test_dockerfile_copies_the_core_from_functions_and_the_worker_imports_it(
    tmp_path: Path,
) -> None:
    app = tmp_path / "app"
    for source, destination in copy_lines():
        target = app / Path(destination).relative_to("/app") if destination.startswith(
            "/app") else app / destination
        if (ROOT / source).is_dir():
            shutil.copytree(ROOT / source, target, dirs_exist_ok=True,
                            ignore=shutil.ignore_patterns("__pycache__"))
        else:
            target.parent.mkdir(parents=True, exist_ok=True)
            shutil.copy(ROOT / source, target)
    assert ("functions/cogmora_core", "/app/cogmora_core") in copy_lines()

    result = subprocess.run([sys.executable, "-c", PROBE], cwd=app, capture_output=True,
                            text=True, timeout=60)

    assert result.returncode == 0, result.stderr
    found = json.loads(result.stdout.strip().splitlines()[-1])
    assert all(path.startswith(str(app)) for path in found.values()), found
