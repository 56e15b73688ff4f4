"""Per-user rate limits and idempotency keys of the HTTP API, kept in Firestore.

Both live in the user's tree, written only by the backend (the security
rules deny clients every access):

- `users/{uid}/apiUsage/window` — `{windowStart, count, expiresAt}`: the
  requests of the current clock minute (a fixed window). Each signed-in
  request counts in a transaction, so the limit holds across every instance
  of the function; past `config/limits.apiRequestsPerMinute` (default 120)
  the request is answered 429 with `Retry-After` (the seconds to the next
  minute) and not counted.
- `users/{uid}/idempotencyKeys/{sha256 of the key}` — `{requestHash, method,
  path, status, response, createdAt, expiresAt}`: the first answer to a
  request that carried `Idempotency-Key`, written in the same transaction as
  the documents it created. The same key with the same request answers it
  again and writes nothing; with another request, 422. A key is kept 24 hours
  (`expiresAt`, a Firestore TTL field: expired records are ignored here and
  deleted by the TTL policy, see docs/api.md).
"""

from __future__ import annotations

import hashlib
import json
import math
import re
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from decimal import Decimal
from typing import Any

from cogmora_backend import paths
from cogmora_backend.api.errors import ApiError, Code
from cogmora_backend.store import Database, Transaction
from cogmora_core.config import LimitsConfig

WINDOW = timedelta(minutes=1)
#: How long an idempotency key is kept (and its first answer replayed).
IDEMPOTENCY_TTL = timedelta(hours=24)
#: Keys are 1 to 255 printable ASCII characters (a UUID is the usual choice).
IDEMPOTENCY_KEY = re.compile(r"[\x21-\x7e]{1,255}")
IDEMPOTENCY_HEADER = "Idempotency-Key"
REPLAYED_HEADER = "Idempotent-Replayed"


def requests_per_minute(limits: Mapping[str, Any] | None) -> int:
    """Return the per-user API limit of a `config/limits` document (its default when
    absent or invalid; the one reading of `config/limits`, `LimitsConfig`)."""
    return LimitsConfig.from_document(limits).api_requests_per_minute


def count_request(database: Database, uid: str, now: datetime) -> None:
    """Count one request of `uid` in this minute's window, or raise `ApiError` 429."""
    start = now.replace(second=0, microsecond=0)
    usage_path = paths.api_usage(uid)
    # Read outside the transaction: a transaction's reads lock, and every request of
    # every user would otherwise hold config/limits (an admin's edit would wait on all).
    limit = requests_per_minute(database.read(paths.CONFIG_LIMITS))

    def work(tx: Transaction) -> None:
        usage = tx.get(usage_path)
        count = 0
        if usage is not None and usage.get("windowStart") == start:
            raw = usage.get("count")
            count = raw if isinstance(raw, int) and not isinstance(raw, bool) else 0
        if count >= limit:
            wait = max(1, math.ceil((start + WINDOW - now).total_seconds()))
            raise ApiError(429, Code.RATE_LIMITED,
                           f"more than {limit} requests this minute; retry in {wait} s",
                           headers={"Retry-After": str(wait)})
        tx.set(usage_path, {"windowStart": start, "count": count + 1,
                            "expiresAt": start + 2 * WINDOW})

    database.run(work)


def idempotency_key(header: str | None) -> str | None:
    """Return the request's `Idempotency-Key`, None without one, or raise `ApiError` 400."""
    if header is None:
        return None
    if not IDEMPOTENCY_KEY.fullmatch(header):
        raise ApiError(400, Code.INVALID_IDEMPOTENCY_KEY,
                       f"{IDEMPOTENCY_HEADER} must be 1 to 255 printable ASCII characters "
                       "without spaces", IDEMPOTENCY_HEADER)
    return header


def request_hash(method: str, path: str, body: object) -> str:
    """Return the fingerprint of a request: its route and its JSON body's value.

    Key order and spacing do not count; a number and a string never compare
    equal, and `10.5` differs from `10.50` as the texts do.
    """
    return hashlib.sha256(json.dumps([method, path, _tagged(body)], sort_keys=True,
                                     separators=(",", ":")).encode()).hexdigest()


def _tagged(value: object) -> object:
    if isinstance(value, Decimal | int) and not isinstance(value, bool):
        return {"#": str(value)}
    if isinstance(value, dict):
        return {key: _tagged(item) for key, item in value.items()}
    if isinstance(value, list):
        return [_tagged(item) for item in value]
    return value


@dataclass(frozen=True)
class Answer:
    """An answer to a creating request: status, JSON text, and whether it is a replay."""

    status: int
    text: str
    replayed: bool = False


def create_once(database: Database, uid: str, key: str | None, request: tuple[str, str, object],
                documents: Mapping[str, Mapping[str, Any]], answer: Answer,
                now: datetime) -> Answer:
    """Write `documents` and return `answer`; with a key, only the first time.

    `request` is (method, path, JSON body). With `key`, one transaction reads
    the key's record: a live record of the same request returns its answer
    (a replay, nothing written), of another request raises `ApiError` 422;
    else the documents and the record are written together, so racing
    retries create once.
    """
    if key is None:
        def write(tx: Transaction) -> None:
            for path, document in documents.items():
                tx.set(path, document)

        database.write(write)
        return answer
    method, route, body = request
    fingerprint = request_hash(method, route, body)
    record_path = paths.idempotency_key(uid, hashlib.sha256(key.encode()).hexdigest())

    def work(tx: Transaction) -> Answer:
        record = tx.get(record_path)
        if record is not None and _live(record, now):
            if record.get("requestHash") != fingerprint:
                raise ApiError(422, Code.IDEMPOTENCY_KEY_REUSED,
                               f"this {IDEMPOTENCY_HEADER} was used for another request in "
                               "the last 24 hours; use a new key for a new request",
                               IDEMPOTENCY_HEADER)
            return Answer(int(record["status"]), str(record["response"]), replayed=True)
        for path, document in documents.items():
            tx.set(path, document)
        tx.set(record_path, {"requestHash": fingerprint, "method": method, "path": route,
                             "status": answer.status, "response": answer.text,
                             "createdAt": now, "expiresAt": now + IDEMPOTENCY_TTL})
        return answer

    return database.run(work)


def _live(record: Mapping[str, Any], now: datetime) -> bool:
    expires = record.get("expiresAt")
    return not isinstance(expires, datetime) or expires > now
