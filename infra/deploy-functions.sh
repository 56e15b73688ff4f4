#!/usr/bin/env bash
# Deploy the Cloud Functions, Firestore rules and indexes to a real project.
#   infra/deploy-functions.sh <project-id>
# Needs `firebase login` (or GOOGLE_APPLICATION_CREDENTIALS) on the machine.
set -euo pipefail
cd "$(dirname "$0")/.."
project=${1:?usage: infra/deploy-functions.sh <project-id>}
scripts/setup.sh
exec node_modules/.bin/firebase deploy --project "$project" --only functions,firestore
