#!/usr/bin/env bash
# Install everything the project needs on a fresh machine; fast when nothing changed.
#   - the pinned Firebase CLI (npm ci, package.json / package-lock.json)
#   - .venv: the repository's Python environment (tests, worker, tools)
#   - functions/venv: what the Functions emulator runs the functions with
#   - .cache/firestore-emulator.jar: wrapper around the installed Firestore emulator
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
PYTHON=${PYTHON:-python3}
mkdir -p .cache

stamp_ok() { [ -f "$1" ] && [ "$(cat "$1")" = "$2" ]; }
digest() { cat "$@" | sha256sum | cut -d' ' -f1; }

# Java for the emulators.
if ! command -v java >/dev/null 2>&1; then
  echo "setup: installing a Java runtime" >&2
  apt-get update -qq && apt-get install -y -qq openjdk-17-jre-headless
fi

# The Firebase CLI, pinned.
want=$(digest package.json package-lock.json)
if ! stamp_ok .cache/npm.stamp "$want" || [ ! -x node_modules/.bin/firebase ]; then
  echo "setup: npm ci" >&2
  npm ci --no-audit --no-fund --loglevel=error
  echo "$want" > .cache/npm.stamp
fi

# The repository's environment.
want=$(digest requirements-dev.txt functions/requirements.txt worker/requirements.txt pyproject.toml)
if ! stamp_ok .cache/venv.stamp "$want" || [ ! -x .venv/bin/python ]; then
  echo "setup: .venv" >&2
  [ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
  .venv/bin/pip install -q --disable-pip-version-check -r requirements-dev.txt -r worker/requirements.txt
  .venv/bin/pip install -q --disable-pip-version-check --no-deps -e .
  echo "$want" > .cache/venv.stamp
fi

# The functions' environment, as the Functions emulator expects it.
want=$(digest functions/requirements.txt)
if ! stamp_ok .cache/functions-venv.stamp "$want" || [ ! -x functions/venv/bin/python ]; then
  echo "setup: functions/venv" >&2
  [ -x functions/venv/bin/python ] || "$PYTHON" -m venv functions/venv
  functions/venv/bin/pip install -q --disable-pip-version-check -r functions/requirements.txt
  echo "$want" > .cache/functions-venv.stamp
fi

# Secrets for the Functions emulator: GEMINI_API_KEY=none means the built-in model runs.
# Put a real key here (GEMINI_API_KEY=...) to use Gemini locally; the file stays out of git.
if [ ! -f functions/.secret.local ] || grep -qx "GEMINI_API_KEY=" functions/.secret.local; then
  echo "GEMINI_API_KEY=none" > functions/.secret.local
fi

# The Firestore emulator wrapper jar (EMULATOR.md): rebuilt each time, it is tiny.
.venv/bin/python scripts/build_emulator_jar.py .cache/firestore-emulator.jar >/dev/null
echo "setup: ready in $ROOT" >&2
