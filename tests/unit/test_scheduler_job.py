"""The scheduler ops script names the job as firebase deploy does and calls the right API."""

from __future__ import annotations

import importlib.util
from pathlib import Path
from types import SimpleNamespace

import pytest

ROOT = Path(__file__).resolve().parents[2]
spec = importlib.util.spec_from_file_location("scheduler_job", ROOT / "infra" / "scheduler_job.py")
assert spec is not None and spec.loader is not None
scheduler_job = importlib.util.module_from_spec(spec)
spec.loader.exec_module(scheduler_job)


class RecordingClient:
    """Stands in for scheduler_v1.CloudSchedulerClient (no Google Cloud here)."""

    def __init__(self) -> None:
        self.calls: list[tuple[str, str]] = []

    def _job(self, state: str) -> SimpleNamespace:
        return SimpleNamespace(name="j", schedule="every 1 minutes", time_zone="Etc/UTC",
                               state=SimpleNamespace(name=state), last_attempt_time=None,
                               schedule_time=None)

    def get_job(self, name: str) -> SimpleNamespace:
        self.calls.append(("get_job", name))
        return self._job("ENABLED")

    def pause_job(self, name: str) -> SimpleNamespace:
        self.calls.append(("pause_job", name))
        return self._job("PAUSED")

    def resume_job(self, name: str) -> SimpleNamespace:
        self.calls.append(("resume_job", name))
        return self._job("ENABLED")

    def run_job(self, name: str) -> None:
        self.calls.append(("run_job", name))


def test_job_name_matches_firebase_deploys_naming() -> None:
    backend = (ROOT / "node_modules/firebase-tools/lib/deploy/functions/backend.js")
    assert "firebase-schedule-${cloudFunction.id}-${cloudFunction.region}" in backend.read_text()
    assert scheduler_job.job_name("p1", "us-central1") == (
        "projects/p1/locations/us-central1/jobs/firebase-schedule-mainScheduler-us-central1")


@pytest.mark.parametrize(("command", "call", "shown"), [
    ("show", "get_job", "state:     ENABLED"), ("pause", "pause_job", "state:     PAUSED"),
    ("resume", "resume_job", "state:     ENABLED"), ("run-now", "run_job", "run"),
])
def test_each_command_calls_its_api(command: str, call: str, shown: str) -> None:
    client = RecordingClient()
    output = scheduler_job.act(client, command, "projects/p/locations/r/jobs/j")
    assert client.calls == [(call, "projects/p/locations/r/jobs/j")]
    assert shown in output
