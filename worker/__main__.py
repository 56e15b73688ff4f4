"""`python -m worker`: run the Cloud Run worker."""

from worker.app import run

run()
