#!/usr/bin/env bash
# Run every benchmark and write docs/BENCHMARKS.md and docs/RELIABILITY.md from their
# figures. Pure ones run directly; each emulator one gets a fresh Emulator Suite.
#   scripts/bench-all.sh            full sizes (about 30 minutes on 2 cores)
#   QUICK=1 scripts/bench-all.sh    small sizes, to check the pipeline (writes under .cache/quick)
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh
source scripts/env.sh
if [ -n "${QUICK:-}" ]; then  # small sizes, figures and docs under .cache/quick
  export COGMORA_BENCH_DIR="$ROOT/.cache/quick/bench" COGMORA_DOCS_DIR="$ROOT/.cache/quick/docs"
  sizes=(--orders 100000 --symbols 100) rounds=50 cost=10000 users=500 chaos=(--symbols 4 --triggers 32)
  storms=(1200)
else
  sizes=() rounds=500 cost=10000,100000 users=5000 chaos=() storms=(1200 10000)
fi
python -m bench.fastpath
python -m bench.throughput "${sizes[@]}"
emulated() {
  firebase emulators:exec --project "$COGMORA_PROJECT" --only "$COGMORA_EMULATORS" "$*"
  end_functions_workers
}
emulated python -m bench.settlement_latency --rounds 100
emulated python -m bench.worker_latency --rounds "$rounds"
emulated python -m bench.scaleout
emulated python -m bench.firestore_cost --sizes "$cost"
emulated python -m bench.scheduler_scale --users "$users"
emulated python -m bench.chaos "${chaos[@]}"
for levels in "${storms[@]}"; do emulated python -m bench.storm --levels "$levels"; done
python -m bench.storm_report
python -m bench.report
