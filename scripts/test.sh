#!/usr/bin/env bash
# Run every test: set up, then unit, integration and end-to-end tests inside the
# Firebase Emulator Suite (Firestore + Functions + Auth + Cloud Tasks). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh
source scripts/env.sh
ruff check functions worker localkucoin tests bench scripts
mypy
# Tests stay offline: the AI agent's price checks go to a local KuCoin (scripts/env.sh).
local_kucoin_apis
# COGMORA_FIREBASE_CONFIG runs on another firebase.json (e.g. other ports, for a second
# checkout testing at the same time); the tests find the ports through the Emulator Hub.
firebase --config "${COGMORA_FIREBASE_CONFIG:-firebase.json}" emulators:exec --project "$COGMORA_PROJECT" --only "$COGMORA_EMULATORS" \
  "pytest -p no:cacheprovider --durations=10 ${*:-tests}"
