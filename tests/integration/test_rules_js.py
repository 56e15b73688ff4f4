"""Security rules through the real Firebase JS SDK: runs `tests/rules-js/` with `node --test`.

The web app writes through the modular JS SDK, which sends values its own way
(null for an empty field, whole numbers as integers, dotted update paths,
batches, transactions, listeners). `tests/rules-js/rules.test.mjs` drives
`@firebase/rules-unit-testing` and `firebase` (pinned in package.json,
installed by `npm ci` in scripts/setup.sh) against this session's Firestore
emulator. This test fails, never skips, when Node or the packages are missing,
when any JS case fails, or when the suite runs fewer cases than it should.
"""

from __future__ import annotations

import os
import re
import shutil
import subprocess
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest

from tests.support.emulator import set_background_triggers

ROOT = Path(__file__).resolve().parents[2]
SUITE = ROOT / "tests" / "rules-js"
PACKAGES = ("@firebase/rules-unit-testing", "firebase")
#: The JS suite has more cases than this; fewer passing means cases went missing.
MIN_PASSED = 140
TIMEOUT_SECONDS = 240


@pytest.fixture
def quiet_functions(db: Any) -> Iterator[None]:
    """Turn the Functions emulator's Firestore triggers off: these tests are about rules."""
    set_background_triggers(False)
    yield
    set_background_triggers(True)


def test_rules_through_the_firebase_js_sdk(quiet_functions: None, tmp_path: Path) -> None:
    node = shutil.which("node")
    if node is None:
        pytest.fail("node is not on PATH: the JS rules suite needs Node 20")
    missing = [name for name in PACKAGES
               if not (ROOT / "node_modules" / name / "package.json").is_file()]
    if missing:
        pytest.fail(f"node_modules lacks {', '.join(missing)}: run scripts/setup.sh (npm ci)")
    files = sorted(str(path) for path in SUITE.glob("*.test.mjs"))
    assert files, f"no *.test.mjs in {SUITE}"
    tap = tmp_path / "rules-js.tap"

    result = subprocess.run(
        [node, "--test", "--test-reporter=spec", "--test-reporter-destination=stdout",
         "--test-reporter=tap", f"--test-reporter-destination={tap}", *files],
        cwd=ROOT, env=os.environ.copy(), capture_output=True, text=True,
        timeout=TIMEOUT_SECONDS)

    output = f"{result.stdout}\n{result.stderr}"
    assert result.returncode == 0, f"the JS rules suite failed:\n{output}"
    counts = dict(re.findall(r"^# (\w+) (\d+)$", tap.read_text(), re.MULTILINE))
    assert int(counts.get("fail", -1)) == 0, output
    assert int(counts.get("skipped", -1)) == 0 and int(counts.get("todo", -1)) == 0, output
    assert int(counts.get("pass", 0)) >= MIN_PASSED, f"only {counts} passed:\n{output}"
