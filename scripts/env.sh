# Shared settings for the scripts that run the emulators (sourced, not run).
export COGMORA_PROJECT=${COGMORA_PROJECT:-demo-cogmora}
export FIRESTORE_EMULATOR_BINARY_PATH="$ROOT/.cache/firestore-emulator.jar"
export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
# The Firebase CLI delivers function events without HTTP keep-alive (scripts/emulator-node.cjs
# says why: with it, a delivery now and then is lost as "socket hang up").
export NODE_OPTIONS="--require $ROOT/scripts/emulator-node.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"

# The Functions emulator leaves its Python workers (functions-framework) running after it
# stops; end those of this checkout when a script using the emulators exits. They run
# from the environment's real path: a checkout whose functions/venv is a link to another
# one's leaked every worker (hundreds, gigabytes) when matched by the link's path.
end_functions_workers() {
  pkill -KILL -f "$(readlink -f "$ROOT/functions/venv")/bin/functions-framework" 2>/dev/null || true
}
trap end_functions_workers EXIT

# The emulators every script starts (firebase.json gives their ports).
export COGMORA_EMULATORS=firestore,functions,auth,tasks

# The functions read market prices at KUCOIN_*_API (the AI agent's risk check): point them
# at two free local ports, where the tests and benchmarks that need prices serve a local
# KuCoin (tests/integration/conftest.py, bench/scheduler_queue.py); two checkouts at once
# get different ports.
local_kucoin_apis() {
  local spot_port futures_port
  read -r spot_port futures_port < <(python -c 'import socket
s, f = socket.socket(), socket.socket()
s.bind(("127.0.0.1", 0)); f.bind(("127.0.0.1", 0))
print(s.getsockname()[1], f.getsockname()[1])')
  export KUCOIN_SPOT_API="http://127.0.0.1:$spot_port" KUCOIN_FUTURES_API="http://127.0.0.1:$futures_port"
}
