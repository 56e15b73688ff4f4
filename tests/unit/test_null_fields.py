"""Null fields on triggers: the core and the HTTP API say what the security rules say.

The rules side of the same table runs on the emulator in
`tests/integration/test_rules.py` (and through the JS SDK in `tests/rules-js/`).
"""

from __future__ import annotations

import json

import pytest

from cogmora_backend.api.errors import ApiError
from cogmora_backend.api.orders import load_json, trigger_document
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.errors import Rejected
from tests.support.null_cases import NULL_CASES, NullCase


@pytest.mark.parametrize("case", NULL_CASES, ids=lambda case: case.name)
def test_the_core_reads_null_as_absent_and_keeps_required_fields_required(
        case: NullCase) -> None:
    if case.reason is None:
        order = parse_trigger(case.document)
        assert order.venue == (case.document.get("venue") or "kucoin")
        if case.document["symbolType"] == "spot":
            assert order.leverage == 1
    else:
        with pytest.raises(Rejected) as rejected:
            parse_trigger(case.document)
        assert rejected.value.reason == case.reason


@pytest.mark.parametrize("case", NULL_CASES, ids=lambda case: case.name)
def test_the_api_accepts_the_same_null_fields_and_writes_them_as_absent(
        case: NullCase) -> None:
    fields = {name: value for name, value in case.document.items() if name != "details"}
    body = load_json(json.dumps(fields).encode())  # as a request's body is read
    if case.reason is None:
        document = trigger_document(body, market=False)
        assert None not in document.values()
        assert parse_trigger(document) == parse_trigger(case.document)
    else:
        with pytest.raises(ApiError) as refused:
            trigger_document(body, market=False)
        assert (refused.value.status, refused.value.code) == (400, case.reason)
