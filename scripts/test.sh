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
# The AI agent checks proposals against the exchange's REST tickers (KUCOIN_SPOT_API,
# KUCOIN_FUTURES_API, as the worker's settings). Tests stay offline: the Functions emulator
# inherits these local addresses, where the integration tests serve a local KuCoin
# (tests/integration/conftest.py); free ports, so two checkouts can test at once.
read -r spot_port futures_port < <(python -c 'import socket
s, f = socket.socket(), socket.socket()
s.bind(("127.0.0.1", 0)); f.bind(("127.0.0.1", 0))
print(s.getsockname()[1], f.getsockname()[1])')
export KUCOIN_SPOT_API="http://127.0.0.1:$spot_port" KUCOIN_FUTURES_API="http://127.0.0.1:$futures_port"
# COGMORA_FIREBASE_CONFIG runs on another firebase.json (e.g. other ports, for a second
# checkout testing at the same time); the tests find the ports through the Emulator Hub.
firebase --config "${COGMORA_FIREBASE_CONFIG:-firebase.json}" emulators:exec --project "$COGMORA_PROJECT" --only firestore,functions,auth,tasks \
  "pytest -p no:cacheprovider --durations=10 ${*:-tests}"
