#!/usr/bin/env bash
# Build the worker image with Cloud Build and deploy N shard services from one template.
#   infra/deploy-worker.sh <project-id> [shards=1] [generation=g1] [region=us-central1]
# Each shard is the Cloud Run service cogmora-worker-<generation>-<i> (infra/workers.py);
# re-sharding: deploy a new generation, wait for workerShards to report it fresh, then
#   python3 infra/workers.py retire --project <project-id> --generation <old>
# The service account cogmora-worker@<project>.iam.gserviceaccount.com needs
# roles/datastore.user and roles/monitoring.metricWriter (the Prometheus sidecar).
set -euo pipefail
cd "$(dirname "$0")/.."
project=${1:?usage: infra/deploy-worker.sh <project-id> [shards] [generation] [region]}
exec python3 infra/workers.py deploy --project "$project" --shards "${2:-1}" \
  --generation "${3:-g1}" --region "${4:-us-central1}"
