# Shared settings for the scripts that run the emulators (sourced, not run).
export COGMORA_PROJECT=${COGMORA_PROJECT:-demo-cogmora}
export FIRESTORE_EMULATOR_BINARY_PATH="$ROOT/.cache/firestore-emulator.jar"
export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
# The Firebase CLI delivers function events without HTTP keep-alive (scripts/emulator-node.cjs
# says why: with it, a delivery now and then is lost as "socket hang up").
export NODE_OPTIONS="--require $ROOT/scripts/emulator-node.cjs${NODE_OPTIONS:+ $NODE_OPTIONS}"

# The Functions emulator leaves its Python workers (functions-framework) running after it
# stops; end those of this checkout when a script using the emulators exits.
end_functions_workers() { pkill -f "$ROOT/functions/venv/bin/functions-framework" 2>/dev/null || true; }
trap end_functions_workers EXIT
