#!/usr/bin/env bash
# Run the system locally: set up, start the Firebase Emulator Suite with the
# functions loaded, seed the demo accounts and show them live. Ctrl-C stops all.
# Arguments go to scripts/demo.py (e.g. --once).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$(pwd)
scripts/setup.sh
source scripts/env.sh
firebase emulators:exec --project "$COGMORA_PROJECT" --only "$COGMORA_EMULATORS" \
  "python -m scripts.demo $*"
