#!/usr/bin/env bash
# Run an emulator benchmark (set-up included):
#   scripts/bench.sh [settlement_latency|worker_latency] [--rounds N]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
name=${1:-settlement_latency}
shift || true
scripts/setup.sh
source scripts/env.sh
firebase emulators:exec --project "$COGMORA_PROJECT" --only firestore,functions,auth \
  "python -m bench.${name} $*"
