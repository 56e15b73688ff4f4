#!/usr/bin/env bash
# Run an emulator benchmark (set-up included):
#   scripts/bench.sh [settlement_latency|worker_latency] [--rounds N]
#   scripts/bench.sh storm [--levels 1200|10000] [--label before|after]
#   scripts/bench.sh listener_cost [--sizes 1200,10000]   (and every other bench/ module)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
name=${1:-settlement_latency}
shift || true
scripts/setup.sh
source scripts/env.sh
local_kucoin_apis  # the AI agent's price checks, as in scripts/test.sh
# COGMORA_FIREBASE_CONFIG: another firebase.json (other ports), as for scripts/test.sh.
firebase --config "${COGMORA_FIREBASE_CONFIG:-firebase.json}" emulators:exec --project "$COGMORA_PROJECT" --only "$COGMORA_EMULATORS" \
  "python -m bench.${name} $*"
