#!/usr/bin/env bash
# Run an emulator benchmark (set-up included):
#   scripts/bench.sh [settlement_latency|worker_latency] [--rounds N]
#   scripts/bench.sh storm [--levels 1200|10000] [--label before|after]
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
name=${1:-settlement_latency}
shift || true
scripts/setup.sh
source scripts/env.sh
# The functions read market prices at KUCOIN_*_API: local ports, which a benchmark that
# runs the AI agent in the functions serves (bench/scheduler_queue.py), as scripts/test.sh.
read -r spot_port futures_port < <(python -c 'import socket
s, f = socket.socket(), socket.socket()
s.bind(("127.0.0.1", 0)); f.bind(("127.0.0.1", 0))
print(s.getsockname()[1], f.getsockname()[1])')
export KUCOIN_SPOT_API="http://127.0.0.1:$spot_port" KUCOIN_FUTURES_API="http://127.0.0.1:$futures_port"
# COGMORA_FIREBASE_CONFIG: another firebase.json (other ports), as for scripts/test.sh.
firebase --config "${COGMORA_FIREBASE_CONFIG:-firebase.json}" emulators:exec --project "$COGMORA_PROJECT" --only firestore,functions,auth,tasks \
  "python -m bench.${name} $*"
