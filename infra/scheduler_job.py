"""Operate the deployed mainScheduler job with google-cloud-scheduler.

    python infra/scheduler_job.py show    --project P [--region us-central1]
    python infra/scheduler_job.py pause   --project P
    python infra/scheduler_job.py resume  --project P
    python infra/scheduler_job.py run-now --project P

Firebase deploys a scheduled function as the Cloud Scheduler job
`firebase-schedule-<function>-<region>`. Needs credentials that may manage
Cloud Scheduler (gcloud auth application-default login, or a service account).
"""

from __future__ import annotations

import argparse
import sys
from typing import Any

FUNCTION = "mainScheduler"


def job_name(project: str, region: str, function: str = FUNCTION) -> str:
    """Return the full resource name of a scheduled function's job."""
    return f"projects/{project}/locations/{region}/jobs/firebase-schedule-{function}-{region}"


def describe(job: Any) -> str:
    """Return a few readable lines about a job."""
    state = getattr(job.state, "name", str(job.state))
    return "\n".join([
        f"name:      {job.name}",
        f"schedule:  {job.schedule} ({job.time_zone})",
        f"state:     {state}",
        f"last run:  {job.last_attempt_time or '-'}",
        f"next run:  {job.schedule_time or '-'}",
    ])


def act(client: Any, command: str, name: str) -> str:
    """Do `command` (show, pause, resume, run-now) on the job; return what to print."""
    if command == "show":
        return describe(client.get_job(name=name))
    if command == "pause":
        return describe(client.pause_job(name=name))
    if command == "resume":
        return describe(client.resume_job(name=name))
    if command == "run-now":
        client.run_job(name=name)
        return f"asked Cloud Scheduler to run {name} now"
    raise ValueError(f"unknown command {command!r}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["show", "pause", "resume", "run-now"])
    parser.add_argument("--project", required=True)
    parser.add_argument("--region", default="us-central1")
    parser.add_argument("--function", default=FUNCTION)
    args = parser.parse_args(argv)
    from google.cloud import scheduler_v1

    client = scheduler_v1.CloudSchedulerClient()
    print(act(client, args.command, job_name(args.project, args.region, args.function)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
