#!/usr/bin/env bash
# Deploy Cogmora's log-based metrics, dashboard and alert policies to Cloud Monitoring.
#   infra/monitoring/deploy.sh <project-id> [notification-channel ...]
# A notification channel is its full name (projects/P/notificationChannels/ID; list them
# with `gcloud beta monitoring channels list`). Every step replaces what it finds by name
# (log metrics) or display name (dashboard, policies), so running it again updates.
# The worker's metrics reach Cloud Monitoring through the Managed Service for Prometheus
# sidecar of each shard's service (infra/worker-service.yaml); the functions' through
# the log-based metrics here. Needs roles/logging.configWriter and roles/monitoring.editor.
set -euo pipefail
cd "$(dirname "$0")"
project=${1:?usage: infra/monitoring/deploy.sh <project-id> [notification-channel ...]}
shift
channels=$(IFS=,; echo "$*")

for file in log-metrics/*.json; do
  name=$(basename "$file" .json)
  if gcloud logging metrics describe "$name" --project "$project" >/dev/null 2>&1; then
    gcloud logging metrics update "$name" --project "$project" --config-from-file "$file"
  else
    gcloud logging metrics create "$name" --project "$project" --config-from-file "$file"
  fi
done

display=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["displayName"])' dashboard.json)
existing=$(gcloud monitoring dashboards list --project "$project" \
  --filter "displayName=\"$display\"" --format 'value(name)' | head -n 1)
if [ -n "$existing" ]; then
  gcloud monitoring dashboards delete "$existing" --project "$project" --quiet
fi
gcloud monitoring dashboards create --project "$project" --config-from-file dashboard.json

for file in alerts/*.json; do
  display=$(python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["displayName"])' "$file")
  existing=$(gcloud alpha monitoring policies list --project "$project" \
    --filter "displayName=\"$display\"" --format 'value(name)' | head -n 1)
  args=(--project "$project" --policy-from-file "$file")
  if [ -n "$channels" ]; then args+=(--notification-channels "$channels"); fi
  if [ -n "$existing" ]; then
    gcloud alpha monitoring policies delete "$existing" --project "$project" --quiet
  fi
  gcloud alpha monitoring policies create "${args[@]}"
done
