"""Enqueue a named task on a task queue function through the Admin SDK (Cloud Tasks)."""

from __future__ import annotations

import os
from dataclasses import dataclass
from typing import Any, Protocol


@dataclass(frozen=True, kw_only=True)
class QueuePolicy:
    """What Cloud Tasks does with a task queue function's tasks (the function's options)."""

    #: Rate limits: tasks started per second, tasks running at once.
    max_dispatches_per_second: int
    max_concurrent_dispatches: int
    #: Retry policy: attempts in all (the first included), backoff.
    max_attempts: int
    min_backoff_seconds: int
    max_backoff_seconds: int
    max_doublings: int
    #: The function's own timeout.
    timeout_sec: int


class Enqueue(Protocol):
    """Put a task on a queue function under `name`: True, or False when already queued."""

    def __call__(self, function: str, name: str, data: dict[str, Any]) -> bool: ...


def enqueue(function: str, name: str, data: dict[str, Any], deadline_seconds: int) -> bool:
    """Enqueue `data` as task `name` on the queue function `function`.

    True when queued, False when a task of that name is queued already (or ran
    within the last hour). A lost answer is asked once more: the name makes it
    safe. `deadline_seconds` is how long a delivery may run (Cloud Tasks' default
    deadline is 10 minutes, the emulator's 60 s): the function's timeout.
    """
    from firebase_admin import exceptions, functions

    queue = functions.task_queue(function)
    options = functions.TaskOptions(task_id=name, dispatch_deadline_seconds=deadline_seconds)
    for attempt in (1, 2):
        try:
            queue.enqueue({"data": data}, options)
            return True
        except (exceptions.AlreadyExistsError, exceptions.ConflictError):
            return False
        except ValueError as error:
            # firebase-admin 7.7 cuts a first character off the task name the Cloud Tasks
            # emulator answers, as if it began with "/" (it does only for names it made
            # up): the named task was queued, the SDK only misreads the answer.
            if os.environ.get("CLOUD_TASKS_EMULATOR_HOST") and "resource name" in str(error):
                return True
            raise
        except (exceptions.UnavailableError, exceptions.DeadlineExceededError,
                exceptions.UnknownError):
            if attempt == 2:
                raise
    raise AssertionError("unreachable")
