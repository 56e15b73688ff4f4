"""The HTTP API on the running Functions emulator, over HTTP with per-user ID tokens.

Every answer is checked against docs/openapi.yaml. What the API writes is
compared with what the app writes through the security rules (REST as the
same user): the worker and the functions must not be able to tell them apart.
"""

from __future__ import annotations

import hashlib
import json
import time
from collections.abc import Iterator
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass
from datetime import UTC, datetime, timedelta
from typing import Any

import httpx
import pytest

from cogmora_core.contract.triggers import parse_trigger
from tests.support.auth import disable_user, register_user, revoke_tokens
from tests.support.emulator import document, functions_url, new_uid
from tests.support.openapi import check_answer
from tests.support.rest import AppClient, id_token

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FUTURES = {"symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below",
           "targetPrice": 60000, "action": "long", "amount": 100.5, "leverage": 3,
           "stopLoss": 58000.25, "takeProfit": 65000}
FUTURES_ABOVE = {**FUTURES, "condition": "above", "targetPrice": 62000, "stopLoss": 61000,
                 "takeProfit": 70000}
SPOT_MARKET = {"symbol": "BTC-USDT", "symbolType": "spot", "action": "buy", "amount": "250.5"}
POSITION = {"symbol": "XBTUSDTM", "symbolType": "futures", "positionType": "long",
            "size": 0.01, "averageEntryPrice": 60000, "leverage": 3, "margin": 200,
            "openFee": 0.36, "liquidationPrice": 40300, "openedAt": T0,
            "sourceTriggerId": "p1",
            "details": {"status": "open", "stopLoss": 58000, "takeProfit": 65000}}


@dataclass
class Answer:
    status: int
    body: Any
    headers: httpx.Headers


class Api:
    """Calls the `api` function and checks every answer against the OpenAPI document."""

    def __init__(self) -> None:
        self.base = functions_url("api")
        self.http = httpx.Client(timeout=30)

    def call(self, method: str, template: str, token: str | None = None,
             path: str | None = None, json: Any = None, content: bytes | str | None = None,
             params: dict[str, Any] | None = None,
             headers: dict[str, str] | None = None) -> Answer:
        sent = dict(headers or {})
        if token is not None:
            sent["Authorization"] = f"Bearer {token}"
        response = self.http.request(method, self.base + (path or template), json=json,
                                     content=content, params=params, headers=sent)
        body = response.json()
        check_answer(method, template, response.status_code, body, response.headers)
        return Answer(response.status_code, body, response.headers)


@pytest.fixture(scope="module")
def api(db: Any) -> Iterator[Api]:
    client = Api()
    yield client
    client.http.close()


def account(db: Any, balance: Any = 10000) -> tuple[str, str]:
    """Write a funded account as the backend would; return (uid, its ID token)."""
    uid = new_uid("api")
    register_user(uid)  # the API looks the account up in Firebase Auth (disabled, revoked)
    db.document(f"users/{uid}").set({"displayName": "Bot", "balance": balance,
                                     "createdAt": T0})
    return uid, id_token(uid)


def triggers_of(db: Any, uid: str) -> dict[str, dict[str, Any]]:
    return {s.id: s.to_dict() for s in db.collection(f"users/{uid}/tradeTriggers").stream()}


def expect_error(answer: Answer, status: int, code: str) -> None:
    assert (answer.status, answer.body["error"]["code"]) == (status, code), answer.body


# ---- health, routing --------------------------------------------------------------


def test_health_needs_no_token(api: Api) -> None:
    answer = api.call("GET", "/health")
    assert answer.status == 200
    assert answer.body == {"status": "ok", "version": "1.0.0"}


def test_wrong_method_is_405_with_allow(api: Api, db: Any) -> None:
    _, token = account(db)
    answer = api.call("GET", "/api/v1/trade/close", token)
    expect_error(answer, 405, "method_not_allowed")
    assert "POST" in answer.headers["allow"]


def test_unknown_route_is_404(api: Api) -> None:
    response = httpx.get(api.base + "/api/v1/nothing", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


# ---- authentication on every route --------------------------------------------------

ROUTES = [
    ("POST", "/api/v1/trade/create", None, FUTURES),
    ("POST", "/api/v1/trade/order", None, SPOT_MARKET),
    ("POST", "/api/v1/trade/oco", None, {"triggers": [FUTURES, FUTURES_ABOVE]}),
    ("POST", "/api/v1/trade/close", None, {"positionId": "p1"}),
    ("DELETE", "/api/v1/trade/{triggerId}", "/api/v1/trade/t1", None),
    ("GET", "/api/v1/account/balance", None, None),
    ("GET", "/api/v1/account/positions", None, None),
    ("GET", "/api/v1/account/history", None, None),
    ("GET", "/api/v1/account/assets", None, None),
]
ROUTE_IDS = [f"{m} {t}" for m, t, _, _ in ROUTES]


@pytest.mark.parametrize(("method", "template", "path", "body"), ROUTES, ids=ROUTE_IDS)
@pytest.mark.parametrize(("credentials", "code"), [
    (None, "missing_token"),
    ("Bearer not-a-jwt", "invalid_token"),
    ("Bearer eyJhbGciOiJub25lIn0.e30.", "invalid_token"),
    ("Basic dXNlcjpwYXNz", "invalid_token"),
    ("expired", "token_expired"),
])
def test_every_api_route_refuses_a_missing_invalid_or_expired_token(
    api: Api, db: Any, method: str, template: str, path: str | None, body: Any,
    credentials: str | None, code: str,
) -> None:
    uid, _ = account(db)
    headers = {}
    if credentials == "expired":
        headers["Authorization"] = f"Bearer {id_token(uid, int(time.time()) - 7200)}"
    elif credentials is not None:
        headers["Authorization"] = credentials
    answer = api.call(method, template, path=path, json=body, headers=headers)
    expect_error(answer, 401, code)
    assert answer.headers["www-authenticate"].startswith("Bearer")
    assert triggers_of(db, uid) == {}


# ---- creating triggers and market orders --------------------------------------------


def test_created_trigger_is_the_document_the_app_writes(api: Api, db: Any) -> None:
    uid, token = account(db)

    answer = api.call("POST", "/api/v1/trade/create", token, json=FUTURES)

    assert answer.status == 201
    trigger_id = answer.body["id"]
    written = document(db, f"users/{uid}/tradeTriggers/{trigger_id}")
    assert written == {**FUTURES, "details": {"status": "active"}}
    parse_trigger(written)  # what the worker reads back
    assert answer.body["trigger"] == {
        "id": trigger_id, "symbol": "XBTUSDTM", "symbolType": "futures",
        "condition": "below", "targetPrice": "60000", "action": "long", "amount": "100.5",
        "leverage": 3, "stopLoss": "58000.25", "takeProfit": "65000",
        "details": {"status": "active"}}
    # The app, through the rules, may write exactly this document, and it reads the same.
    app = AppClient(uid)
    assert app.create(f"users/{uid}/tradeTriggers/app-twin", written) == 200
    assert document(db, f"users/{uid}/tradeTriggers/app-twin") == written


def test_a_backpack_trigger_with_a_trailing_stop_is_what_the_app_writes(
        api: Api, db: Any) -> None:
    uid, token = account(db)
    body = {"symbol": "SOL_USDC_PERP", "symbolType": "futures", "venue": "backpack",
            "condition": "below", "targetPrice": "140.5", "action": "long", "amount": 250,
            "leverage": 5, "trailingStop": {"percent": "2.5", "activationPrice": 150}}

    answer = api.call("POST", "/api/v1/trade/create", token, json=body)

    assert answer.status == 201
    written = document(db, f"users/{uid}/tradeTriggers/{answer.body['id']}")
    assert written == {**body, "targetPrice": 140.5,
                       "trailingStop": {"percent": 2.5, "activationPrice": 150},
                       "details": {"status": "active"}}
    assert answer.body["trigger"]["trailingStop"] == {"percent": "2.5",
                                                      "activationPrice": "150"}
    assert parse_trigger(written).trailing_stop is not None
    assert AppClient(uid).create(f"users/{uid}/tradeTriggers/app-twin", written) == 200


def test_an_oco_pair_is_written_linked_in_one_batch_as_the_app_would(
        api: Api, db: Any) -> None:
    uid, token = account(db)

    answer = api.call("POST", "/api/v1/trade/oco", token,
                      json={"triggers": [FUTURES, FUTURES_ABOVE]})

    assert answer.status == 201
    low, high = answer.body["ids"]
    written = triggers_of(db, uid)
    assert written == {
        low: {**FUTURES, "ocoTriggerId": high, "details": {"status": "active"}},
        high: {**FUTURES_ABOVE, "ocoTriggerId": low, "details": {"status": "active"}}}
    assert [t["ocoTriggerId"] for t in answer.body["triggers"]] == [high, low]
    # The rules accept the same pair from the app (mutual links in one commit).
    twins = {f"users/{uid}/tradeTriggers/app-{n}": {**written[i], "ocoTriggerId": f"app-{m}"}
             for n, m, i in (("a", "b", low), ("b", "a", high))}
    assert AppClient(uid).create_all(twins) == 200


def test_an_oco_pair_with_one_bad_trigger_writes_neither(api: Api, db: Any) -> None:
    uid, token = account(db)
    answer = api.call("POST", "/api/v1/trade/oco", token, json={
        "triggers": [FUTURES, {**FUTURES_ABOVE, "takeProfit": 61500}]})
    expect_error(answer, 400, "invalid_take_profit")
    assert answer.body["error"]["field"] == "triggers[1].takeProfit"
    expect_error(api.call("POST", "/api/v1/trade/oco", token, json={"triggers": [FUTURES]}),
                 400, "invalid_body")
    assert triggers_of(db, uid) == {}


def test_market_order_is_a_market_trigger_without_target(api: Api, db: Any) -> None:
    uid, token = account(db)

    answer = api.call("POST", "/api/v1/trade/order", token,
                      json={**SPOT_MARKET, "takeProfit": "100000.12345678"})

    assert answer.status == 201
    written = document(db, f"users/{uid}/tradeTriggers/{answer.body['id']}")
    assert written == {"symbol": "BTC-USDT", "symbolType": "spot", "condition": "market",
                       "action": "buy", "amount": 250.5, "takeProfit": 100000.12345678,
                       "details": {"status": "active"}}
    assert answer.body["trigger"]["amount"] == "250.5"
    assert answer.body["trigger"]["takeProfit"] == "100000.12345678"
    assert parse_trigger(written).target_price is None
    assert AppClient(uid).create(f"users/{uid}/tradeTriggers/app-twin", written) == 200


def test_a_short_futures_order_passes_venue_and_leverage_through(api: Api, db: Any) -> None:
    uid, token = account(db)
    body = {"symbol": "ETHUSDTM", "symbolType": "futures", "condition": "above",
            "targetPrice": "3100.5", "action": "short", "amount": 42, "leverage": 100,
            "stopLoss": 3200, "takeProfit": 2900.75, "venue": "kucoin"}

    answer = api.call("POST", "/api/v1/trade/create", token, json=body)

    assert answer.status == 201
    written = document(db, f"users/{uid}/tradeTriggers/{answer.body['id']}")
    assert written == {**body, "targetPrice": 3100.5, "details": {"status": "active"}}
    assert AppClient(uid).create(f"users/{uid}/tradeTriggers/app-twin", written) == 200


INVALID_BODIES = [
    ("bad symbol", "/api/v1/trade/create", {**FUTURES, "symbol": "BTCUSD"}, "invalid_symbol"),
    ("spot symbol on futures", "/api/v1/trade/create", {**FUTURES, "symbol": "BTC-USDT"},
     "invalid_symbol"),
    ("unlisted symbol", "/api/v1/trade/create", {**FUTURES, "symbol": "NOPEUSDTM"},
     "unsupported_symbol"),
    ("negative amount", "/api/v1/trade/create", {**FUTURES, "amount": -5}, "invalid_amount"),
    ("zero amount", "/api/v1/trade/order", {**SPOT_MARKET, "amount": 0}, "invalid_amount"),
    ("amount as a word", "/api/v1/trade/create", {**FUTURES, "amount": "lots"},
     "invalid_amount"),
    ("amount as a boolean", "/api/v1/trade/create", {**FUTURES, "amount": True},
     "invalid_amount"),
    ("nine decimals", "/api/v1/trade/create", {**FUTURES, "amount": "1.123456789"},
     "invalid_amount"),
    ("sixteen digits", "/api/v1/trade/create", {**FUTURES, "amount": "1234567.123456789"},
     "invalid_amount"),
    ("amount at 10^12", "/api/v1/trade/create", {**FUTURES, "amount": 1000000000000},
     "invalid_amount"),
    ("stop-loss above a long's target", "/api/v1/trade/create",
     {**FUTURES, "stopLoss": 61000}, "invalid_stop_loss"),
    ("take-profit below a long's target", "/api/v1/trade/create",
     {**FUTURES, "takeProfit": 59000}, "invalid_take_profit"),
    ("inverted levels on a market order", "/api/v1/trade/order",
     {**SPOT_MARKET, "stopLoss": 90000, "takeProfit": 80000}, "invalid_stop_loss"),
    ("leverage 101", "/api/v1/trade/create", {**FUTURES, "leverage": 101}, "invalid_leverage"),
    ("futures without leverage", "/api/v1/trade/create",
     {k: v for k, v in FUTURES.items() if k != "leverage"}, "invalid_leverage"),
    ("spot with leverage", "/api/v1/trade/order", {**SPOT_MARKET, "leverage": 3},
     "invalid_leverage"),
    ("sell on spot", "/api/v1/trade/order", {**SPOT_MARKET, "action": "sell"},
     "invalid_action"),
    ("another venue", "/api/v1/trade/create", {**FUTURES, "venue": "bybit"},
     "invalid_venue"),
    ("market on create", "/api/v1/trade/create", {**FUTURES, "condition": "market"},
     "invalid_condition"),
    ("unknown condition", "/api/v1/trade/create", {**FUTURES, "condition": "cross"},
     "invalid_condition"),
    ("unknown field", "/api/v1/trade/create", {**FUTURES, "balance": 1e9}, "unknown_fields"),
    ("details from the client", "/api/v1/trade/create",
     {**FUTURES, "details": {"status": "active"}}, "unknown_fields"),
    ("target on a market order", "/api/v1/trade/order",
     {**SPOT_MARKET, "targetPrice": 90000}, "unknown_fields"),
    ("missing amount", "/api/v1/trade/order",
     {k: v for k, v in SPOT_MARKET.items() if k != "amount"}, "missing_field"),
    ("an array", "/api/v1/trade/create", [FUTURES], "invalid_body"),
]


@pytest.mark.parametrize(("route", "body", "code"), [c[1:] for c in INVALID_BODIES],
                         ids=[c[0] for c in INVALID_BODIES])
def test_invalid_bodies_are_refused_and_write_nothing(
    api: Api, db: Any, route: str, body: Any, code: str
) -> None:
    uid, token = account(db)
    answer = api.call("POST", route, token, json=body)
    expect_error(answer, 400, code)
    assert triggers_of(db, uid) == {}


@pytest.mark.parametrize(("content", "code", "status"), [
    (b"symbol=XBTUSDTM", "invalid_json", 400),
    (b"", "invalid_json", 400),
    (b'{"amount": NaN}', "invalid_json", 400),
    (b"\xff\xfe", "invalid_json", 400),
    (b'{"symbol": "' + b"X" * 20000 + b'"}', "body_too_large", 413),
], ids=["form", "empty", "NaN", "not utf-8", "too large"])
def test_bodies_that_are_not_small_json_are_refused(
    api: Api, db: Any, content: bytes, code: str, status: int
) -> None:
    uid, token = account(db)
    answer = api.call("POST", "/api/v1/trade/create", token, content=content,
                      headers={"Content-Type": "application/json"})
    expect_error(answer, status, code)
    assert triggers_of(db, uid) == {}


def test_a_json_body_is_read_whatever_its_content_type(api: Api, db: Any) -> None:
    uid, token = account(db)  # curl -d sends application/x-www-form-urlencoded
    answer = api.call("POST", "/api/v1/trade/order", token,
                      content=json.dumps(SPOT_MARKET).encode(),
                      headers={"Content-Type": "application/x-www-form-urlencoded"})
    assert answer.status == 201
    assert list(triggers_of(db, uid)) == [answer.body["id"]]


# ---- cancelling -------------------------------------------------------------------------


def test_cancel_changes_exactly_what_the_app_changes(api: Api, db: Any) -> None:
    uid, token = account(db)
    trigger_id = api.call("POST", "/api/v1/trade/create", token, json=FUTURES).body["id"]
    twin = document(db, f"users/{uid}/tradeTriggers/{trigger_id}")
    db.document(f"users/{uid}/tradeTriggers/twin").set(twin)

    answer = api.call("DELETE", "/api/v1/trade/{triggerId}", token,
                      path=f"/api/v1/trade/{trigger_id}")
    app_status = AppClient(uid).update(f"users/{uid}/tradeTriggers/twin",
                                       {"details.status": "cancelled"})

    assert (answer.status, app_status) == (200, 200)
    cancelled = document(db, f"users/{uid}/tradeTriggers/{trigger_id}")
    assert cancelled == document(db, f"users/{uid}/tradeTriggers/twin")
    assert cancelled == {**FUTURES, "details": {"status": "cancelled"}}
    assert answer.body["trigger"]["details"] == {"status": "cancelled"}
    assert answer.body["trigger"]["amount"] == "100.5"


def test_cancelling_twice_is_a_conflict_and_a_missing_trigger_is_404(api: Api, db: Any) -> None:
    _, token = account(db)
    trigger_id = api.call("POST", "/api/v1/trade/order", token, json=SPOT_MARKET).body["id"]
    path = f"/api/v1/trade/{trigger_id}"
    assert api.call("DELETE", "/api/v1/trade/{triggerId}", token, path=path).status == 200

    expect_error(api.call("DELETE", "/api/v1/trade/{triggerId}", token, path=path),
                 409, "trigger_not_active")
    expect_error(api.call("DELETE", "/api/v1/trade/{triggerId}", token,
                          path="/api/v1/trade/no-such-trigger"), 404, "trigger_not_found")
    expect_error(api.call("DELETE", "/api/v1/trade/{triggerId}", token,
                          path="/api/v1/trade/__reserved__"), 404, "trigger_not_found")


def test_racing_cancels_cancel_once(api: Api, db: Any) -> None:
    uid, token = account(db)
    trigger_id = api.call("POST", "/api/v1/trade/create", token, json=FUTURES).body["id"]
    path = f"/api/v1/trade/{trigger_id}"

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: api.call("DELETE", "/api/v1/trade/{triggerId}",
                                                   token, path=path), range(4)))

    assert sorted(a.status for a in answers) == [200, 409, 409, 409]
    assert document(db, f"users/{uid}/tradeTriggers/{trigger_id}") == {
        **FUTURES, "details": {"status": "cancelled"}}


def test_another_user_can_neither_see_nor_cancel_a_trigger(api: Api, db: Any) -> None:
    owner, owner_token = account(db)
    _, other_token = account(db)
    trigger_id = api.call("POST", "/api/v1/trade/create", owner_token,
                          json=FUTURES).body["id"]
    before = triggers_of(db, owner)

    answer = api.call("DELETE", "/api/v1/trade/{triggerId}", other_token,
                      path=f"/api/v1/trade/{trigger_id}")

    expect_error(answer, 404, "trigger_not_found")
    assert answer.body["error"]["message"] == f"no trigger {trigger_id!r}"
    assert triggers_of(db, owner) == before


# ---- closing ----------------------------------------------------------------------------


def test_close_changes_exactly_what_the_app_changes(api: Api, db: Any) -> None:
    uid, token = account(db)
    db.document(f"users/{uid}/openPositions/p1").set(POSITION)
    db.document(f"users/{uid}/openPositions/twin").set(POSITION)

    answer = api.call("POST", "/api/v1/trade/close", token, json={"positionId": "p1"})
    app_status = AppClient(uid).update(f"users/{uid}/openPositions/twin",
                                       {"details.status": "closing"})

    assert (answer.status, app_status) == (202, 200)
    closing = document(db, f"users/{uid}/openPositions/p1")
    assert closing == document(db, f"users/{uid}/openPositions/twin")
    assert closing == {**POSITION, "details": {**POSITION["details"], "status": "closing"}}
    assert answer.body["position"]["details"] == {"status": "closing", "stopLoss": "58000",
                                                  "takeProfit": "65000"}
    assert answer.body["position"]["openFee"] == "0.36"
    assert answer.body["position"]["openedAt"] == "2026-01-01T00:00:00Z"


def test_closing_twice_is_a_conflict_and_a_missing_position_is_404(api: Api, db: Any) -> None:
    uid, token = account(db)
    db.document(f"users/{uid}/openPositions/p1").set(POSITION)
    assert api.call("POST", "/api/v1/trade/close", token, json={"positionId": "p1"}).status == 202

    expect_error(api.call("POST", "/api/v1/trade/close", token, json={"positionId": "p1"}),
                 409, "position_not_open")
    expect_error(api.call("POST", "/api/v1/trade/close", token, json={"positionId": "p9"}),
                 404, "position_not_found")
    expect_error(api.call("POST", "/api/v1/trade/close", token,
                          json={"positionId": "p1/x/y"}), 404, "position_not_found")


@pytest.mark.parametrize(("body", "code"), [
    ({}, "missing_field"),
    ({"positionId": 7}, "invalid_position_id"),
    ({"positionId": "p1", "price": 1}, "unknown_fields"),
    ("p1", "invalid_body"),
])
def test_close_refuses_invalid_bodies(api: Api, db: Any, body: Any, code: str) -> None:
    uid, token = account(db)
    db.document(f"users/{uid}/openPositions/p1").set(POSITION)
    expect_error(api.call("POST", "/api/v1/trade/close", token, json=body), 400, code)
    assert document(db, f"users/{uid}/openPositions/p1") == POSITION


def test_another_user_can_neither_see_nor_close_a_position(api: Api, db: Any) -> None:
    owner, _ = account(db)
    _, other_token = account(db)
    db.document(f"users/{owner}/openPositions/p1").set(POSITION)

    expect_error(api.call("POST", "/api/v1/trade/close", other_token,
                          json={"positionId": "p1"}), 404, "position_not_found")
    assert document(db, f"users/{owner}/openPositions/p1") == POSITION
    assert api.call("GET", "/api/v1/account/positions", other_token).body == {"positions": []}


# ---- account --------------------------------------------------------------------------


def test_balance_is_exact_and_the_callers_own(api: Api, db: Any) -> None:
    _, token = account(db, balance=12345.67890123)
    _, other_token = account(db, balance=10000)

    assert api.call("GET", "/api/v1/account/balance", token).body == {
        "balance": "12345.67890123", "currency": "USDT"}
    assert api.call("GET", "/api/v1/account/balance", other_token).body == {
        "balance": "10000", "currency": "USDT"}


def test_balance_of_an_account_not_yet_created_is_404(api: Api) -> None:
    uid = new_uid("api")
    register_user(uid)
    answer = api.call("GET", "/api/v1/account/balance", id_token(uid))
    expect_error(answer, 404, "account_not_found")


def test_positions_are_listed_newest_first_with_exact_values(api: Api, db: Any) -> None:
    uid, token = account(db)
    db.document(f"users/{uid}/openPositions/old").set(POSITION)
    db.document(f"users/{uid}/openPositions/new").set(
        {**POSITION, "symbol": "SOLUSDTM", "size": 12.34567891, "averageEntryPrice": 141.0325,
         "openedAt": T0 + timedelta(hours=1), "details": {"status": "closing"}})

    positions = api.call("GET", "/api/v1/account/positions", token).body["positions"]

    assert [p["id"] for p in positions] == ["new", "old"]
    assert positions[0]["size"] == "12.34567891"
    assert positions[0]["averageEntryPrice"] == "141.0325"
    assert positions[0]["details"] == {"status": "closing"}
    assert positions[1]["margin"] == "200"
    assert positions[1]["leverage"] == 3


def history_record(position_id: str, hours: int, **extra: Any) -> dict[str, Any]:
    return {"positionId": position_id, "symbol": "XBTUSDTM", "symbolType": "futures",
            "positionType": "long", "size": 0.01, "entryPrice": 60000, "leverage": 3,
            "margin": 200, "openFee": 0.36, "openedAt": T0 + timedelta(hours=hours),
            "status": "open", **extra}


def test_history_pages_newest_first_with_a_cursor(api: Api, db: Any) -> None:
    uid, token = account(db)
    _, other_token = account(db)
    for n in range(5):
        db.document(f"users/{uid}/tradeHistory/h{n}").set(history_record(f"h{n}", n))
    db.document(f"users/{uid}/tradeHistory/h0").update({
        "status": "closed", "closePrice": 61000.5, "closeFee": 0.366003, "closedAt": T0,
        "closeReason": "take_profit", "pnl": 9.27899700, "pnlPercent": 4.6312,
        "credit": 209.638997})

    pages, cursor = [], None
    while True:
        params = {"limit": 2} | ({"cursor": cursor} if cursor else {})
        body = api.call("GET", "/api/v1/account/history", token, params=params).body
        pages.append([item["id"] for item in body["items"]])
        cursor = body["nextCursor"]
        if cursor is None:
            break

    assert pages == [["h4", "h3"], ["h2", "h1"], ["h0"]]
    last = api.call("GET", "/api/v1/account/history", token, params={"limit": 1,
                    "cursor": "h1"}).body
    assert last["items"][0]["pnl"] == "9.278997"
    assert last["items"][0]["closePrice"] == "61000.5"
    assert last["items"][0]["closedAt"] == "2026-01-01T00:00:00Z"
    assert last["nextCursor"] is None
    default = api.call("GET", "/api/v1/account/history", token).body
    assert [item["id"] for item in default["items"]] == ["h4", "h3", "h2", "h1", "h0"]
    # Another user sees none of it, and cannot page through it with its cursors.
    assert api.call("GET", "/api/v1/account/history", other_token).body == {
        "items": [], "nextCursor": None}
    expect_error(api.call("GET", "/api/v1/account/history", other_token,
                          params={"cursor": "h2"}), 400, "invalid_cursor")


@pytest.mark.parametrize(("params", "code"), [
    ({"limit": 0}, "invalid_limit"),
    ({"limit": 101}, "invalid_limit"),
    ({"limit": "ten"}, "invalid_limit"),
    ({"limit": -1}, "invalid_limit"),
    ({"cursor": "nope"}, "invalid_cursor"),
    ({"offset": 3}, "unknown_parameters"),
])
def test_history_refuses_invalid_parameters(api: Api, db: Any, params: Any, code: str) -> None:
    _, token = account(db)
    expect_error(api.call("GET", "/api/v1/account/history", token, params=params), 400, code)


def test_assets_list_the_markets_the_api_accepts(api: Api, db: Any) -> None:
    _, token = account(db)
    body = api.call("GET", "/api/v1/account/assets", token).body
    markets = {(m["symbol"], m["symbolType"]) for m in body["markets"]}
    assert {("BTC-USDT", "spot"), ("XBTUSDTM", "futures"), ("SOLUSDTM", "futures")} <= markets
    assert body["venues"] == ["backpack", "binance", "kucoin"]
    assert {(m["symbol"], m["symbolType"]) for m in body["markets"]
            if m["venue"] == "binance"} == {
        (f"{base}USDT", kind) for base in ("BTC", "ETH", "SOL") for kind in ("spot", "futures")}
    assert {(m["symbol"], m["venue"], m["quote"]) for m in body["markets"]
            if m["venue"] == "backpack"} == {
        (f"{base}_USDC{perp}", "backpack", "USDC") for base in ("BTC", "ETH", "SOL")
        for perp in ("", "_PERP")}
    assert body["symbolTypes"]["futures"]["symbolPatterns"]["backpack"] == (
        "^[A-Z0-9]{1,15}_USDC_PERP$")
    assert body["symbolTypes"]["futures"]["leverage"] == {"min": 1, "max": 100}


# ---- disabled and revoked accounts (issue 13.7) --------------------------------------


def test_a_disabled_users_still_valid_token_is_refused(api: Api, db: Any) -> None:
    uid, token = account(db)
    assert api.call("GET", "/api/v1/account/balance", token).status == 200

    disable_user(uid)

    answer = api.call("GET", "/api/v1/account/balance", token)
    expect_error(answer, 401, "user_disabled")
    expect_error(api.call("POST", "/api/v1/trade/order", token, json=SPOT_MARKET),
                 401, "user_disabled")
    assert triggers_of(db, uid) == {}


def test_a_revoked_token_is_refused(api: Api, db: Any) -> None:
    uid, _ = account(db)
    token = id_token(uid, int(time.time()) - 30)  # valid for another 59 minutes
    assert api.call("GET", "/api/v1/account/balance", token).status == 200
    time.sleep(1)  # the revocation time is in whole seconds, after the token's

    revoke_tokens(uid)

    expect_error(api.call("GET", "/api/v1/account/balance", token), 401, "token_revoked")


def test_a_token_of_a_user_auth_does_not_know_is_refused(api: Api, db: Any) -> None:
    uid = new_uid("api")  # e.g. deleted from Firebase Auth since the token was issued
    db.document(f"users/{uid}").set({"displayName": "Gone", "balance": 10000,
                                     "createdAt": T0})
    expect_error(api.call("GET", "/api/v1/account/balance", id_token(uid)),
                 401, "user_not_found")


# ---- idempotency keys (issue 13.6) -------------------------------------------------------


def key_record(db: Any, uid: str, key: str) -> dict[str, Any] | None:
    digest = hashlib.sha256(key.encode()).hexdigest()
    return document(db, f"users/{uid}/idempotencyKeys/{digest}")


def test_a_retried_create_answers_the_first_result_and_writes_nothing_new(
        api: Api, db: Any) -> None:
    uid, token = account(db)
    key = {"Idempotency-Key": "bot-7f3a-0001"}

    first = api.call("POST", "/api/v1/trade/create", token, json=FUTURES, headers=key)
    again = api.call("POST", "/api/v1/trade/create", token, json=FUTURES, headers=key)

    assert (first.status, again.status) == (201, 201)
    assert again.body == first.body
    assert again.headers["idempotent-replayed"] == "true"
    assert "idempotent-replayed" not in first.headers
    assert list(triggers_of(db, uid)) == [first.body["id"]]
    record = key_record(db, uid, "bot-7f3a-0001")
    assert record is not None
    assert record["expiresAt"] - record["createdAt"] >= timedelta(hours=24)
    assert json.loads(record["response"]) == first.body


def test_the_same_key_with_another_body_or_route_is_422_and_writes_nothing(
        api: Api, db: Any) -> None:
    uid, token = account(db)
    key = {"Idempotency-Key": "k-1"}
    first = api.call("POST", "/api/v1/trade/create", token, json=FUTURES, headers=key)

    other_body = api.call("POST", "/api/v1/trade/create", token,
                          json={**FUTURES, "amount": 101}, headers=key)
    other_route = api.call("POST", "/api/v1/trade/order", token, json=SPOT_MARKET,
                           headers=key)

    expect_error(other_body, 422, "idempotency_key_reused")
    expect_error(other_route, 422, "idempotency_key_reused")
    assert list(triggers_of(db, uid)) == [first.body["id"]]


def test_racing_retries_with_one_key_create_once(api: Api, db: Any) -> None:
    uid, token = account(db)
    key = {"Idempotency-Key": "race-1"}

    with ThreadPoolExecutor(4) as pool:
        answers = list(pool.map(lambda _: api.call("POST", "/api/v1/trade/order", token,
                                                   json=SPOT_MARKET, headers=key), range(4)))

    assert [a.status for a in answers] == [201] * 4
    assert len({a.body["id"] for a in answers}) == 1
    assert list(triggers_of(db, uid)) == [answers[0].body["id"]]


def test_a_retried_oco_pair_is_written_once(api: Api, db: Any) -> None:
    uid, token = account(db)
    key = {"Idempotency-Key": "oco-1"}
    body = {"triggers": [FUTURES, FUTURES_ABOVE]}
    first = api.call("POST", "/api/v1/trade/oco", token, json=body, headers=key)
    again = api.call("POST", "/api/v1/trade/oco", token, json=body, headers=key)
    assert again.body == first.body
    assert sorted(triggers_of(db, uid)) == sorted(first.body["ids"])


def test_a_refused_request_keeps_no_key_and_keys_are_per_user(api: Api, db: Any) -> None:
    uid, token = account(db)
    other, other_token = account(db)
    key = {"Idempotency-Key": "shared-key"}
    expect_error(api.call("POST", "/api/v1/trade/order", token,
                          json={**SPOT_MARKET, "amount": 0}, headers=key), 400, "invalid_amount")
    assert key_record(db, uid, "shared-key") is None

    mine = api.call("POST", "/api/v1/trade/order", token, json=SPOT_MARKET, headers=key)
    theirs = api.call("POST", "/api/v1/trade/order", other_token, json=SPOT_MARKET,
                      headers=key)

    assert (mine.status, theirs.status) == (201, 201)
    assert mine.body["id"] != theirs.body["id"]
    assert len(triggers_of(db, uid)) == len(triggers_of(db, other)) == 1


@pytest.mark.parametrize("key", ["", "x" * 256, "tab\tkey"], ids=["empty", "long", "control"])
def test_an_unusable_idempotency_key_is_400(api: Api, db: Any, key: str) -> None:
    uid, token = account(db)
    answer = api.call("POST", "/api/v1/trade/order", token, json=SPOT_MARKET,
                      headers={"Idempotency-Key": key})
    expect_error(answer, 400, "invalid_idempotency_key")
    assert triggers_of(db, uid) == {}


# ---- per-user rate limits (issue 13.6) --------------------------------------------------


@pytest.fixture
def limit_of_three(db: Any) -> Iterator[None]:
    """Set config/limits.apiRequestsPerMinute to 3, away from a minute's end."""
    limits = db.document("config/limits")
    before = document(db, "config/limits")
    limits.set({"apiRequestsPerMinute": 3}, merge=True)
    if time.time() % 60 > 45:  # the window is the clock's minute: do not straddle two
        time.sleep(61 - time.time() % 60)
    yield
    if before is None:
        limits.delete()
    else:
        limits.set(before)


def test_past_the_limit_requests_are_429_with_retry_after(
        api: Api, db: Any, limit_of_three: None) -> None:
    uid, token = account(db)
    _, other_token = account(db)
    expired = id_token(uid, int(time.time()) - 7200)
    for _ in range(5):  # refused before counting
        expect_error(api.call("GET", "/api/v1/account/balance", expired), 401, "token_expired")

    statuses = [api.call("GET", "/api/v1/account/balance", token).status for _ in range(3)]
    refused = api.call("POST", "/api/v1/trade/order", token, json=SPOT_MARKET)

    assert statuses == [200, 200, 200]
    expect_error(refused, 429, "rate_limited")
    assert 1 <= int(refused.headers["retry-after"]) <= 60
    assert triggers_of(db, uid) == {}
    assert api.call("GET", "/api/v1/account/balance", other_token).status == 200


def test_concurrent_requests_never_pass_the_limit(db: Any, limit_of_three: None) -> None:
    # Six racing counts on Firestore itself (the Functions emulator drops some of six
    # concurrent HTTP requests with ECONNRESET, which would test the emulator, not us).
    from cogmora_backend.api.errors import ApiError
    from cogmora_backend.api.guards import count_request
    from cogmora_backend.firestore import FirestoreDatabase

    uid = new_uid("racer")
    now = datetime.now(UTC)

    def one(_: int) -> int:
        try:
            count_request(FirestoreDatabase(db), uid, now)
        except ApiError as error:
            return error.status
        return 200

    with ThreadPoolExecutor(6) as pool:
        statuses = list(pool.map(one, range(6)))
    assert sorted(statuses) == [200, 200, 200, 429, 429, 429]
    assert document(db, f"users/{uid}/apiUsage/window")["count"] == 3


# ---- routing found by Schemathesis (issue 13.8) -------------------------------------------


@pytest.mark.parametrize("route", ["create", "order", "oco", "close"])
def test_the_post_routes_are_no_trigger_ids(api: Api, db: Any, route: str) -> None:
    uid, token = account(db)
    db.document(f"users/{uid}/tradeTriggers/{route}").set(
        {**FUTURES, "details": {"status": "active"}})
    template = f"/api/v1/trade/{route}"
    for method in ("DELETE", "GET", "OPTIONS"):
        answer = api.call(method, template, token)
        expect_error(answer, 405, "method_not_allowed")
        assert answer.headers["allow"] == "POST", method
    assert document(db, f"users/{uid}/tradeTriggers/{route}")["details"] == {
        "status": "active"}


def test_a_path_with_an_encoded_newline_answers_json(api: Api, db: Any) -> None:
    _, token = account(db)
    answer = api.call("DELETE", "/api/v1/trade/{triggerId}", token,
                      path="/api/v1/trade/abc%0A")
    expect_error(answer, 404, "trigger_not_found")
    response = httpx.get(api.base + "/api/v1/nothing%0A", timeout=30)
    assert response.status_code == 404
    assert response.json()["error"]["code"] == "not_found"


def test_an_empty_cursor_is_the_first_page(api: Api, db: Any) -> None:
    uid, token = account(db)
    db.document(f"users/{uid}/tradeHistory/h0").set(history_record("h0", 0))
    body = api.call("GET", "/api/v1/account/history", token, params={"cursor": ""}).body
    assert [item["id"] for item in body["items"]] == ["h0"]
