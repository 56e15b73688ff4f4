"""Write the opening journal entry of every account older than the journal (idempotent).

Run it once after deploying the journal, against the project of the
environment (GOOGLE_CLOUD_PROJECT, application default credentials, or
FIRESTORE_EMULATOR_HOST for the emulators):

    python -m scripts.migrate_ledger

It is safe to run again: an account with a `funded` or `opening` entry is
left alone. The `migrateLedger` callable (admins) does the same.
"""

from __future__ import annotations

import json
import sys

from cogmora_backend import firestore_client
from cogmora_backend.journal import migrate_all
from cogmora_backend.logs import configure_logging


def main() -> int:
    """Migrate every account; print the report as JSON; fail when an account failed."""
    configure_logging()
    report = migrate_all(firestore_client.database())
    print(json.dumps({"accounts": report.accounts, "migrated": report.migrated,
                      "failures": report.failures}))
    return 1 if report.failures else 0


if __name__ == "__main__":
    sys.exit(main())
