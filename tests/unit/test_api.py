"""The HTTP API's pure parts and its Flask app on the in-memory database.

The same app runs on Firestore in tests/integration/test_api.py; here a fake
token verifier (`ok-<uid>`) stands in for Firebase Auth.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from decimal import Decimal
from typing import Any

import pytest
from flask.testing import FlaskClient
from hypothesis import given
from hypothesis import strategies as st
from openapi_spec_validator import validate as validate_openapi

from cogmora_backend.api import API_VERSION
from cogmora_backend.api.app import create_app
from cogmora_backend.api.errors import ApiError
from cogmora_backend.api.orders import oco_documents, trigger_document
from cogmora_backend.api.views import to_json
from cogmora_core.contract.triggers import parse_trigger
from cogmora_core.markets import MARKETS, listed_market
from cogmora_core.model import SymbolType
from cogmora_core.money import parse_number
from cogmora_core.validation import parse_symbol
from tests.support.memory import MemoryDatabase
from tests.support.openapi import app_operations, check_answer, documented_operations, spec

T0 = datetime(2026, 1, 1, tzinfo=UTC)
FUTURES = {"symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below",
           "targetPrice": 60000, "action": "long", "amount": 100, "leverage": 3}


def verify(token: str) -> str:
    if token.startswith("ok-"):
        return token[3:]
    raise ApiError(401, "invalid_token", "not a test token")


def build(documents: dict[str, Any] | None = None) -> tuple[MemoryDatabase, FlaskClient]:
    database = MemoryDatabase(documents)
    return database, create_app(lambda: database, verify).test_client()


def call(client: FlaskClient, method: str, template: str, uid: str | None = "u1",
         path: str | None = None, headers: dict[str, str] | None = None, **kwargs: Any) -> Any:
    headers = {**(headers or {}), **({"Authorization": f"Bearer ok-{uid}"} if uid else {})}
    response = client.open(path or template, method=method, headers=headers, **kwargs)
    check_answer(method, template, response.status_code, response.get_json(), response.headers)
    return response


# ---- the OpenAPI document -----------------------------------------------------------------


def test_openapi_document_is_valid_openapi_3_1() -> None:
    validate_openapi(spec())
    assert spec()["openapi"].startswith("3.1")
    assert spec()["info"]["version"] == API_VERSION


def test_every_route_is_documented_and_every_documented_route_exists() -> None:
    _, client = build()
    routes = app_operations(client.application)
    assert routes - documented_operations() == set(), "undocumented routes"
    assert documented_operations() - routes == set(), "documented routes the app lacks"


def test_every_operation_documents_its_auth_and_errors() -> None:
    for path, item in spec()["paths"].items():
        for method, operation in item.items():
            public = operation.get("security") == []
            assert public == (path == "/health"), f"{method} {path} auth"
            assert ("401" in operation["responses"]) == (not public), f"{method} {path} 401"
            assert "500" in operation["responses"]
            if "requestBody" in operation:
                assert {"400", "413"} <= set(operation["responses"]), f"{method} {path}"


# ---- markets ---------------------------------------------------------------------------


def test_every_listed_market_is_one_the_rules_accept() -> None:
    # One entry per market: Binance writes a spot and a perpetual symbol alike (BTCUSDT).
    assert len({(m.venue, m.symbol_type, m.symbol) for m in MARKETS}) == len(MARKETS)
    for market in MARKETS:
        data = {"symbol": market.symbol, "symbolType": str(market.symbol_type),
                "venue": market.venue}
        assert parse_symbol(data) == (market.symbol, market.symbol_type, market.venue)


def test_a_listed_symbol_counts_only_with_its_type_and_venue() -> None:
    assert listed_market("XBTUSDTM", SymbolType.FUTURES, "kucoin") is not None
    assert listed_market("XBTUSDTM", SymbolType.SPOT, "kucoin") is None
    assert listed_market("XBTUSDTM", SymbolType.FUTURES, "binance") is None
    assert listed_market("BTCUSDTM", SymbolType.FUTURES, "kucoin") is None
    spot = listed_market("BTCUSDT", SymbolType.SPOT, "binance")
    perpetual = listed_market("BTCUSDT", SymbolType.FUTURES, "binance")
    assert spot is not None and perpetual is not None
    assert (spot.symbol_type, perpetual.symbol_type, spot.quote) == (
        SymbolType.SPOT, SymbolType.FUTURES, "USDT")
    assert listed_market("BTCUSDT", SymbolType.SPOT, "kucoin") is None


# ---- bodies into documents -------------------------------------------------------------


def test_decimal_strings_and_numbers_become_exact_firestore_numbers() -> None:
    document = trigger_document({**FUTURES, "targetPrice": "60000.10", "amount": Decimal("0.1"),
                                 "leverage": Decimal("5.0"), "stopLoss": None}, market=False)
    assert document == {"symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below",
                        "targetPrice": 60000.1, "action": "long", "amount": 0.1,
                        "leverage": 5, "details": {"status": "active"}}
    assert isinstance(document["leverage"], int)
    parse_trigger(document)


@given(st.decimals(min_value=Decimal("0.00000001"), max_value=Decimal("9999999.99999999"),
                   places=8))
def test_any_accepted_amount_is_written_and_answered_exactly(amount: Decimal) -> None:
    document = trigger_document({**FUTURES, "amount": format(amount, "f")}, market=False)
    assert parse_number(document["amount"]) == amount
    assert Decimal(to_json(document["amount"])) == amount


@pytest.mark.parametrize(("amount", "accepted"), [
    ("123456.123456789", False),  # nine decimals
    ("1234567.12345678", True),  # fifteen significant digits
    ("12345678.12345678", False),  # sixteen
    ("99999999999.99999", False),  # sixteen, below 10^12
    ("999999999999", True),
])
def test_amounts_a_double_cannot_hold_exactly_are_refused(amount: str, accepted: bool) -> None:
    body = {**FUTURES, "amount": amount}
    if accepted:
        assert parse_number(trigger_document(body, market=False)["amount"]) == Decimal(amount)
    else:
        with pytest.raises(ApiError) as refused:
            trigger_document(body, market=False)
        assert (refused.value.status, refused.value.code) == (400, "invalid_amount")


def test_a_trailing_stop_is_written_with_exact_numbers_and_checked_by_the_core() -> None:
    body = {**FUTURES, "trailingStop": {"percent": "1.5", "activationPrice": "61000.25"}}
    document = trigger_document(body, market=False)
    assert document["trailingStop"] == {"percent": 1.5, "activationPrice": 61000.25}
    assert parse_trigger(document).trailing_stop is not None
    for bad in ({"percent": 1, "distance": 2}, {"distance": 0}, {"percent": 100},
                {"distance": "wide"}, {"distance": 1, "step": 1}, "1%"):
        with pytest.raises(ApiError) as refused:
            trigger_document({**FUTURES, "trailingStop": bad}, market=False)
        assert refused.value.code == "invalid_trailing_stop", bad
        assert refused.value.field in ("trailingStop", "trailingStop.distance"), bad


def test_backpack_markets_are_accepted_and_kucoin_symbols_are_not_on_backpack() -> None:
    body = {**FUTURES, "symbol": "SOL_USDC_PERP", "venue": "backpack", "targetPrice": 140}
    assert trigger_document(body, market=False)["venue"] == "backpack"
    for symbol, code in (("XBTUSDTM", "invalid_symbol"), ("DOGE_USDC_PERP",
                                                          "unsupported_symbol")):
        with pytest.raises(ApiError) as refused:
            trigger_document({**body, "symbol": symbol}, market=False)
        assert refused.value.code == code


def test_an_oco_pair_is_linked_both_ways_and_an_error_names_its_trigger() -> None:
    above = {**FUTURES, "condition": "above", "targetPrice": 65000}
    first, second = oco_documents({"triggers": [FUTURES, above]}, ("a", "b"))
    assert (first["ocoTriggerId"], second["ocoTriggerId"]) == ("b", "a")
    assert first == {**trigger_document(FUTURES, market=False), "ocoTriggerId": "b"}
    with pytest.raises(ApiError) as refused:
        oco_documents({"triggers": [FUTURES, {**above, "stopLoss": 66000}]}, ("a", "b"))
    assert (refused.value.code, refused.value.field) == ("invalid_stop_loss",
                                                         "triggers[1].stopLoss")
    for body in ({"triggers": [FUTURES]}, {"triggers": [FUTURES] * 3}, {"triggers": {}}):
        with pytest.raises(ApiError) as refused:
            oco_documents(body, ("a", "b"))
        assert (refused.value.code, refused.value.field) == ("invalid_body", "triggers")


def test_numbers_are_answered_as_exact_strings_and_times_in_utc() -> None:
    assert to_json({"amount": 0.1, "size": 1e-08, "balance": 10000, "leverage": 3,
                    "openedAt": T0, "pnl": -0.0}) == {
        "amount": "0.1", "size": "0.00000001", "balance": "10000", "leverage": 3,
        "openedAt": "2026-01-01T00:00:00Z", "pnl": "0"}


# ---- the app on the in-memory database -------------------------------------------------


def test_create_then_cancel_on_the_memory_database() -> None:
    database, client = build()
    created = call(client, "POST", "/api/v1/trade/create", json=FUTURES)
    trigger_id = created.get_json()["id"]
    path = f"users/u1/tradeTriggers/{trigger_id}"
    assert database.documents[path] == {**FUTURES, "details": {"status": "active"}}

    cancelled = call(client, "DELETE", "/api/v1/trade/{triggerId}",
                     path=f"/api/v1/trade/{trigger_id}")
    again = call(client, "DELETE", "/api/v1/trade/{triggerId}",
                 path=f"/api/v1/trade/{trigger_id}")

    assert cancelled.status_code == 200
    assert database.documents[path]["details"] == {"status": "cancelled"}
    assert (again.status_code, again.get_json()["error"]["code"]) == (409, "trigger_not_active")


def test_a_rejected_trigger_cannot_be_cancelled() -> None:
    path = "users/u1/tradeTriggers/t1"
    rejected = {**FUTURES, "details": {"status": "rejected", "error": "invalid_symbol"}}
    database, client = build({path: rejected})
    answer = call(client, "DELETE", "/api/v1/trade/{triggerId}", path="/api/v1/trade/t1")
    assert answer.status_code == 409
    assert database.documents[path] == rejected


def test_history_pages_on_the_memory_database() -> None:
    documents = {f"users/u1/tradeHistory/h{n}": {"positionId": f"h{n}", "symbol": "XBTUSDTM",
                                                 "symbolType": "futures",
                                                 "positionType": "short", "size": 1,
                                                 "entryPrice": 100, "status": "open",
                                                 "openedAt": T0 + timedelta(minutes=n)}
                 for n in range(3)}
    _, client = build(documents)
    first = call(client, "GET", "/api/v1/account/history",
                 query_string={"limit": 2}).get_json()
    second = call(client, "GET", "/api/v1/account/history",
                  query_string={"limit": 2, "cursor": first["nextCursor"]}).get_json()
    assert [i["id"] for i in first["items"]] == ["h2", "h1"]
    assert ([i["id"] for i in second["items"]], second["nextCursor"]) == (["h0"], None)


def test_an_unexpected_failure_answers_500_without_internals() -> None:
    def broken() -> MemoryDatabase:
        raise RuntimeError("cannot reach projects/secret/databases/(default)")

    client = create_app(broken, verify).test_client()
    answer = call(client, "GET", "/api/v1/account/balance")
    assert answer.status_code == 500
    assert answer.get_json() == {"error": {"code": "internal_error",
                                           "message": "internal error"}}


def test_options_and_unknown_methods_are_405() -> None:
    _, client = build()
    for method in ("OPTIONS", "PUT", "PATCH"):
        answer = call(client, method, "/api/v1/account/balance")
        assert answer.status_code == 405
        assert "GET" in answer.headers["Allow"]


@pytest.mark.parametrize(("price", "accepted"), [
    ("0.000009868", True),  # PEPE: nine decimals, once refused
    ("0.000000000001", True),  # twelve
    ("0.0000000000001", False),  # thirteen
])
def test_prices_keep_twelve_decimals(price: str, accepted: bool) -> None:
    body = {**FUTURES, "targetPrice": price}
    if accepted:
        assert parse_number(trigger_document(body, market=False)["targetPrice"]) == Decimal(price)
    else:
        with pytest.raises(ApiError) as refused:
            trigger_document(body, market=False)
        assert refused.value.code == "invalid_target_price"


# ---- idempotency keys and rate limits on the memory database (issue 13.6) ----------------


class Clock:
    def __init__(self) -> None:
        self.now = datetime(2026, 1, 1, 12, 0, 10, tzinfo=UTC)

    def __call__(self) -> datetime:
        return self.now


def build_clocked(documents: dict[str, Any] | None = None
                  ) -> tuple[MemoryDatabase, FlaskClient, Clock]:
    database, clock = MemoryDatabase(documents), Clock()
    return database, create_app(lambda: database, verify, now=clock).test_client(), clock


def triggers(database: MemoryDatabase) -> list[str]:
    return sorted(p for p in database.documents if "/tradeTriggers/" in p)


def test_an_idempotency_key_replays_the_first_answer_until_it_expires() -> None:
    database, client, clock = build_clocked()
    key = {"Idempotency-Key": "k1"}
    first = call(client, "POST", "/api/v1/trade/create", json=FUTURES, headers=key)
    clock.now += timedelta(hours=23, minutes=59)
    again = call(client, "POST", "/api/v1/trade/create", json=FUTURES, headers=key)
    conflict = call(client, "POST", "/api/v1/trade/create", json={**FUTURES, "amount": 5},
                    headers=key)

    assert again.get_data() == first.get_data()
    assert (again.status_code, again.headers["Idempotent-Replayed"]) == (201, "true")
    assert (conflict.status_code, conflict.get_json()["error"]["code"]) == (
        422, "idempotency_key_reused")
    assert len(triggers(database)) == 1

    clock.now += timedelta(hours=1, minutes=2)  # past the 24 h: a new request
    later = call(client, "POST", "/api/v1/trade/create", json=FUTURES, headers=key)
    assert later.get_json()["id"] != first.get_json()["id"]
    assert len(triggers(database)) == 2


def test_the_same_body_spelled_differently_is_the_same_request() -> None:
    database, client, _ = build_clocked()
    key = {"Idempotency-Key": "k2", "Content-Type": "application/json"}
    first = call(client, "POST", "/api/v1/trade/order", data='{"symbol": "BTC-USDT", '
                 '"symbolType": "spot", "action": "buy", "amount": 10.5}', headers=key)
    again = call(client, "POST", "/api/v1/trade/order", data='{"amount":10.5,"action":"buy",'
                 '"symbolType":"spot","symbol":"BTC-USDT"}', headers=key)
    as_text = call(client, "POST", "/api/v1/trade/order", data='{"amount":"10.5",'
                   '"action":"buy","symbolType":"spot","symbol":"BTC-USDT"}', headers=key)
    assert (first.status_code, again.status_code) == (201, 201)
    assert again.get_json() == first.get_json()
    assert as_text.status_code == 422  # a string is not the number it spells
    assert len(triggers(database)) == 1


def test_requests_past_the_configured_limit_are_429_until_the_next_minute() -> None:
    database, client, clock = build_clocked({"config/limits": {"apiRequestsPerMinute": 2}})
    answers = [call(client, "GET", "/api/v1/account/assets") for _ in range(3)]
    assert [a.status_code for a in answers] == [200, 200, 429]
    assert answers[2].headers["Retry-After"] == "50"  # 12:00:10 -> 12:01:00
    assert answers[2].get_json()["error"]["code"] == "rate_limited"
    other = call(client, "GET", "/api/v1/account/assets", uid="u2")
    assert other.status_code == 200

    clock.now += timedelta(seconds=50)
    assert call(client, "GET", "/api/v1/account/assets").status_code == 200
    assert database.documents["users/u1/apiUsage/window"]["count"] == 1


def test_unauthenticated_requests_are_not_counted() -> None:
    database, client, _ = build_clocked({"config/limits": {"apiRequestsPerMinute": 1}})
    for _ in range(3):
        assert call(client, "GET", "/api/v1/account/assets", uid=None).status_code == 401
    assert "users/u1/apiUsage/window" not in database.documents
    assert call(client, "GET", "/api/v1/account/assets").status_code == 200


@pytest.mark.parametrize(("configured", "limit"), [
    (None, 120), (5, 5), (0, 120), (-3, 120), (2.5, 120), ("60", 120), (True, 120)])
def test_the_rate_limit_comes_from_config_limits_with_a_default(configured: Any,
                                                                limit: int) -> None:
    from cogmora_backend.api.guards import requests_per_minute

    document = {} if configured is None else {"apiRequestsPerMinute": configured}
    assert requests_per_minute(document) == limit


# ---- routing and the OpenAPI document (issue 13.8) -----------------------------------------


@pytest.mark.parametrize("route", ["create", "order", "oco", "close"])
def test_the_post_routes_are_not_taken_for_trigger_ids(route: str) -> None:
    path = f"users/u1/tradeTriggers/{route}"
    database, client = build({path: {**FUTURES, "details": {"status": "active"}}})
    for method in ("DELETE", "GET", "OPTIONS", "PUT"):
        answer = call(client, method, f"/api/v1/trade/{route}")
        assert (answer.status_code, answer.headers["Allow"]) == (405, "POST"), method
    assert database.documents[path]["details"] == {"status": "active"}


def test_an_empty_cursor_is_the_first_page() -> None:
    _, client = build({"users/u1/tradeHistory/h0": {
        "positionId": "h0", "symbol": "XBTUSDTM", "symbolType": "futures",
        "positionType": "long", "size": 1, "entryPrice": 100, "status": "open",
        "openedAt": T0}})
    answer = call(client, "GET", "/api/v1/account/history", query_string={"cursor": ""})
    assert [i["id"] for i in answer.get_json()["items"]] == ["h0"]


def test_the_document_states_the_limits_the_api_applies() -> None:
    from cogmora_backend.api import orders

    schemas = spec()["components"]["schemas"]
    percent = schemas["TrailingPercentInput"]["oneOf"]
    assert percent[0]["maximum"] == orders.MAX_TRAILING_PERCENT == 50
    assert percent[1]["pattern"] == orders.PERCENT_PATTERN.pattern
    assert schemas["AmountInput"]["oneOf"][1]["pattern"] == orders.AMOUNT_PATTERN.pattern
    assert schemas["PriceInput"]["oneOf"][1]["pattern"] == orders.PRICE_PATTERN.pattern
    for name, places in (("AmountInput", 8), ("PriceInput", 12), ("TrailingPercentInput", 8)):
        number = schemas[name]["oneOf"][0]
        assert Decimal(str(number["multipleOf"])) == Decimal(1).scaleb(-places), name
    listed = {m.symbol for m in MARKETS}
    variants = [schemas[v["$ref"].rsplit("/", 1)[1]] for v in schemas["TriggerRequest"]["oneOf"]]
    documented = {s for v in variants for s in v["properties"]["symbol"]["enum"]}
    assert documented == listed


@pytest.mark.parametrize(("text", "amount", "price"), [
    ("1", True, True), ("0.00000001", True, True), ("0.000000000001", False, True),
    ("0", False, False), ("0.00000000", False, False), ("-1", False, False),
    ("01", False, False), ("1.", False, False), (".5", False, False), ("1e5", False, False),
    ("999999999999", True, True), ("1000000000000", False, False),
    ("1234567.12345678", True, True), ("12345678.12345678", False, False),
    ("123456789012.123", True, True), ("123456789012.1234", False, False),
    ("5\n", False, False), ("\u0661", False, False),
])
def test_decimal_strings_are_read_by_the_documented_patterns(text: str, amount: bool,
                                                              price: bool) -> None:
    from cogmora_backend.api import orders

    assert bool(orders.AMOUNT_PATTERN.fullmatch(text)) is amount
    assert bool(orders.PRICE_PATTERN.fullmatch(text)) is price
