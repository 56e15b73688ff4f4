# Shared settings for the scripts that run the emulators (sourced, not run).
export COGMORA_PROJECT=${COGMORA_PROJECT:-demo-cogmora}
export FIRESTORE_EMULATOR_BINARY_PATH="$ROOT/.cache/firestore-emulator.jar"
export PATH="$ROOT/.venv/bin:$ROOT/node_modules/.bin:$PATH"
