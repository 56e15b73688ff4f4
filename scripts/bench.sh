#!/usr/bin/env bash
# Run the benchmarks that need the emulators (set-up included); arguments go to the script.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh
source scripts/env.sh
exec firebase emulators:exec --project "$COGMORA_PROJECT" --only firestore,functions,auth \
  "python -m bench.settlement_latency $*"
