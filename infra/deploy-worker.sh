#!/usr/bin/env bash
# Build the worker image with Cloud Build and deploy it as the Cloud Run service.
#   infra/deploy-worker.sh <project-id> [region]
# The service account cogmora-worker@<project>.iam.gserviceaccount.com needs
# roles/datastore.user.
set -euo pipefail
cd "$(dirname "$0")/.."
project=${1:?usage: infra/deploy-worker.sh <project-id> [region]}
region=${2:-us-central1}
image="gcr.io/${project}/cogmora-worker:$(git rev-parse --short HEAD)"
gcloud builds submit --project "$project" --tag "$image" .
sed -e "s|PROJECT_ID|${project}|g" -e "s|IMAGE|${image}|g" infra/worker-service.yaml \
  > "${TMPDIR:-/tmp}/cogmora-worker-service.yaml"
gcloud run services replace "${TMPDIR:-/tmp}/cogmora-worker-service.yaml" \
  --project "$project" --region "$region"
