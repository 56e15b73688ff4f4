"""Schemathesis against the `api` function on the emulators: the document is the API.

Every operation of docs/openapi.yaml gets requests generated from its schemas,
valid ones (which the API must accept: 2xx, or 404 for ids no document has)
and invalid ones (which it must refuse with 4xx), and every Schemathesis check
runs on every answer: no server error, status, content type, headers and body
as documented, `Allow` on 405, 401 without credentials.

What the schemas cannot express is listed in the document's description; a
valid-by-schema request that breaks one of those rules must be refused with
the rule's code, and is checked for exactly that instead of acceptance.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal
from typing import Any

import pytest
import schemathesis
from schemathesis import Case, GenerationMode
from schemathesis.specs.openapi.checks import positive_data_acceptance

from tests.support.auth import register_user
from tests.support.emulator import document, functions_url, new_uid
from tests.support.openapi import SPEC_PATH
from tests.support.rest import id_token

#: Examples per operation and mode: about a minute and a half for the whole document
#: on two shared cores (the coverage phase adds its boundary cases to these).
MAX_EXAMPLES = 40
#: A refusal is a rejection whatever its reason: 413 (a body past 16 KiB) too.
NEGATIVE_STATUSES = ["400", "401", "403", "404", "405", "406", "409", "413", "415", "422",
                     "428", "429", "5xx"]


#: The document, loaded once (no network): the base URL and token come with each call.
schema = schemathesis.openapi.from_path(SPEC_PATH, config=schemathesis.Config.from_dict({
    "generation": {"mode": "all", "max-examples": MAX_EXAMPLES, "deterministic": True,
                   "database": "none"},
    "phases": {"stateful": {"enabled": False}},
    "checks": {"negative_data_rejection": {"expected-statuses": NEGATIVE_STATUSES}},
    "request-timeout": 30,
}))


@dataclass(frozen=True)
class Target:
    base_url: str
    headers: dict[str, str]


@pytest.fixture(scope="module")
def target(db: Any) -> Iterator[Target]:
    """Return the `api` function's URL and a funded user's token, the rate limit lifted."""
    uid = new_uid("fuzz")
    register_user(uid)
    db.document(f"users/{uid}").set({"displayName": "Fuzz", "balance": 10000})
    limits = document(db, "config/limits")
    # This run makes thousands of requests a minute as one user: lift its limit meanwhile.
    db.document("config/limits").set({"apiRequestsPerMinute": 1_000_000}, merge=True)
    yield Target(functions_url("api"), {"Authorization": f"Bearer {id_token(uid)}"})
    if limits is None:
        db.document("config/limits").delete()
    else:
        db.document("config/limits").set(limits)


@schema.parametrize()
def test_the_api_answers_as_its_document_says(case: Case, target: Target) -> None:
    positive = case.meta is not None and case.meta.generation.mode is GenerationMode.POSITIVE
    if positive and case.headers and "Idempotency-Key" in case.headers:
        # A key reused for another body is a 422 by design: one key per generated request.
        case.headers["Idempotency-Key"] = uuid.uuid4().hex
    refusal = documented_refusal(case) if positive else None
    response = case.call_and_validate(
        base_url=target.base_url, headers=target.headers,
        excluded_checks=[positive_data_acceptance] if refusal else None)
    if refusal:
        assert response.status_code == 400, (refusal, response.text)
        assert response.json()["error"]["code"] in refusal, (refusal, response.text)


def documented_refusal(case: Case) -> set[str] | None:
    """Return the codes a valid-by-schema request must be refused with, or None.

    These are the rules docs/openapi.yaml lists as beyond its schemas.
    """
    path, body = case.operation.path, case.body
    if path == "/api/v1/account/history":
        cursor = (case.query or {}).get("cursor")
        return {"invalid_cursor"} if cursor else None
    if path in ("/api/v1/account/ledger", "/api/v1/account/statement"):
        query = case.query or {}
        codes = {"invalid_cursor"} if query.get("cursor") else set()
        since, before = _time(query.get("from")), _time(query.get("to"))
        if since is not None and before is not None and since >= before:
            codes.add("invalid_period")
        return codes or None
    if not isinstance(body, Mapping):
        return None
    if path == "/api/v1/trade/create":
        return _level_refusals(body, market=False) or None
    if path == "/api/v1/trade/order":
        return _level_refusals(body, market=True) or None
    if path == "/api/v1/trade/oco" and isinstance(body.get("triggers"), list):
        codes = set().union(*(_level_refusals(t, market=False) for t in body["triggers"]
                              if isinstance(t, Mapping)))
        return codes or None
    return None


def _level_refusals(trigger: Mapping[str, Any], market: bool) -> set[str]:
    """Return the codes of the level rules a trigger breaks (docs/api.md)."""
    long = trigger.get("action") in ("buy", "long")
    target = None if market else _decimal(trigger.get("targetPrice"))
    stop, take = _decimal(trigger.get("stopLoss")), _decimal(trigger.get("takeProfit"))

    def below(low: Decimal | None, high: Decimal | None) -> bool:
        return low is None or high is None or low < high

    codes = set()
    if not (below(stop, target) if long else below(target, stop)):
        codes.add("invalid_stop_loss")
    if not (below(target, take) if long else below(take, target)):
        codes.add("invalid_take_profit")
    if not (below(stop, take) if long else below(take, stop)):
        codes.add("invalid_stop_loss")
    trailing = trigger.get("trailingStop")
    if isinstance(trailing, Mapping) and long and target is not None:
        distance = _decimal(trailing.get("distance"))
        if distance is not None and distance >= target:
            codes.add("invalid_trailing_stop")
    return codes


def _time(value: object) -> datetime | None:
    """Return an RFC 3339 query value as an instant (clamped as the API does), or None."""
    if not isinstance(value, str) or not value:
        return None
    moment = datetime.fromisoformat(value.upper())
    try:
        return moment.astimezone(UTC)
    except OverflowError:
        return datetime.min.replace(tzinfo=UTC) if moment.year == 1 else \
            datetime.max.replace(tzinfo=UTC)


def _decimal(value: object) -> Decimal | None:
    if value is None or isinstance(value, bool):
        return None
    if isinstance(value, float):
        return Decimal(repr(value))
    if isinstance(value, int | str):
        return Decimal(value)
    return None
