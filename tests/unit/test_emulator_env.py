"""The scripts' environment for the emulators: the Firebase CLI delivers events without keep-alive.

With Node's default keep-alive agent, the Functions emulator lost an event now
and then ("socket hang up": gunicorn closes an idle connection after 2 s while
Node keeps it for 5 s), and an end-to-end test waited for a settlement that
never came. scripts/emulator-node.cjs turns keep-alive off; scripts/env.sh
preloads it into every Firebase CLI the scripts run.
"""

from __future__ import annotations

import shutil
import subprocess
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def node_agent_keeps_alive(preamble: str) -> str:
    script = (f'{preamble} ROOT="{ROOT}"; source "{ROOT}/scripts/env.sh"; trap - EXIT; '
              "node -e 'process.stdout.write(String(require(\"http\").globalAgent.keepAlive))'")
    result = subprocess.run(["bash", "-c", script], capture_output=True, text=True, check=True)
    return result.stdout


@pytest.fixture(autouse=True)
def node() -> None:
    assert shutil.which("node"), "node runs the Firebase CLI: it is needed here"


def test_the_firebase_cli_runs_without_http_keep_alive() -> None:
    assert node_agent_keeps_alive("") == "false"


def test_node_options_already_set_are_kept() -> None:
    assert node_agent_keeps_alive("export NODE_OPTIONS=--no-warnings;") == "false"
    script = (f'export NODE_OPTIONS=--no-warnings; ROOT="{ROOT}"; source "{ROOT}/scripts/env.sh"; '
              'trap - EXIT; printf %s "$NODE_OPTIONS"')
    options = subprocess.run(["bash", "-c", script], capture_output=True, text=True,
                             check=True).stdout
    assert options == f"--require {ROOT}/scripts/emulator-node.cjs --no-warnings"
