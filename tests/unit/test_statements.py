"""Ledger pages and statements over HTTP, on the in-memory database."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

from flask.testing import FlaskClient

from cogmora_backend.settlement import initialize_account, settle_close, settle_execution
from cogmora_core import TradingConfig
from tests.support.builders import execution_doc, spot_execution_doc
from tests.support.memory import MemoryDatabase
from tests.unit.test_api import build, call

CONFIG = TradingConfig()
T0 = datetime(2026, 1, 1, tzinfo=UTC)


def traded() -> tuple[MemoryDatabase, FlaskClient]:
    """u1: funded at T0, a futures open at +1 h, a spot open at +2 h, its close at +3 h."""
    db, client = build({"users/u1": {"displayName": "A"}, "users/u2": {"displayName": "B"}})
    initialize_account(db, "u1", CONFIG)
    initialize_account(db, "u2", CONFIG)
    db.documents["users/u1/executedTriggers/f1"] = execution_doc()
    db.documents["users/u1/executedTriggers/s1"] = spot_execution_doc()
    db.now = T0 + timedelta(hours=1)
    settle_execution(db, "u1", "f1", CONFIG)
    db.now = T0 + timedelta(hours=2)
    settle_execution(db, "u1", "s1", CONFIG)
    db.documents["users/u1/openPositions/s1"]["details"] = {
        "status": "closing", "closeRequest": {"reason": "manual", "price": 51000,
                                              "source": "worker"}}
    db.now = T0 + timedelta(hours=3)
    settle_close(db, "u1", "s1", CONFIG)
    return db, client


def page(client: FlaskClient, query: str = "", uid: str = "u1") -> Any:
    response = call(client, "GET", "/api/v1/account/ledger",
                    path=f"/api/v1/account/ledger{query}", uid=uid)
    assert response.status_code == 200, response.get_json()
    return response.get_json()


def test_the_ledger_pages_newest_first_with_exact_amounts() -> None:
    _, client = traded()

    first = page(client, "?limit=3")
    rest = page(client, f"?limit=3&cursor={first['nextCursor']}")

    assert [(e["id"], e["amount"], e["balanceAfter"]) for e in first["items"]] == [
        ("close_s1", "1018.98", "9917.38"), ("open_s1", "-1001", "8898.4"),
        ("open_f1", "-100.6", "9899.4")]
    assert first["items"][0] == {
        "id": "close_s1", "kind": "close", "amount": "1018.98", "balanceAfter": "9917.38",
        "currency": "USDT", "ref": "s1", "symbol": "BTC-USDT", "at": "2026-01-01T03:00:00Z",
        "grossPnl": "20", "fee": "1.02", "funding": "0", "closeReason": "manual"}
    assert [e["id"] for e in rest["items"]] == ["funded"]
    assert rest["nextCursor"] is None


def test_the_ledger_filters_by_kind_and_time() -> None:
    _, client = traded()

    opens = page(client, "?kind=open")
    window = page(client, "?from=2026-01-01T01:00:00Z&to=2026-01-01T03:00:00%2B00:00")

    assert [e["id"] for e in opens["items"]] == ["open_s1", "open_f1"]
    assert [e["id"] for e in window["items"]] == ["open_s1", "open_f1"]
    assert [e["id"] for e in page(client, "?kind=close&from=2026-01-01T03:00:00Z")["items"]] \
        == ["close_s1"]


def test_another_users_journal_is_not_seen() -> None:
    _, client = traded()

    assert [e["id"] for e in page(client, uid="u2")["items"]] == ["funded"]


def test_the_statement_has_the_opening_balance_the_entries_and_the_closing_balance() -> None:
    _, client = traded()

    response = call(client, "GET", "/api/v1/account/statement",
                    path="/api/v1/account/statement?from=2026-01-01T01:30:00Z"
                         "&to=2026-01-01T04:00:00Z")

    body = response.get_json()
    assert (body["from"], body["to"], body["currency"]) == (
        "2026-01-01T01:30:00Z", "2026-01-01T04:00:00Z", "USDT")
    assert (body["openingBalance"], body["closingBalance"]) == ("9899.4", "9917.38")
    assert [(e["id"], e["amount"]) for e in body["entries"]] == [
        ("open_s1", "-1001"), ("close_s1", "1018.98")]


def test_the_statement_as_csv() -> None:
    _, client = traded()

    response = client.get("/api/v1/account/statement?from=2026-01-01T00:00:00Z"
                          "&to=2026-01-01T02:00:00Z",
                          headers={"Authorization": "Bearer ok-u1", "Accept": "text/csv"})

    assert response.status_code == 200
    assert response.headers["Content-Type"].startswith("text/csv")
    assert response.get_data(as_text=True).split("\r\n") == [
        "at,kind,amount,balanceAfter,currency,ref,symbol,id",
        "2026-01-01T00:00:00Z,opening_balance,,0,USDT,,,",
        "2026-01-01T00:00:00Z,funded,10000,10000,USDT,initializeAccount,,funded",
        "2026-01-01T01:00:00Z,open,-100.6,9899.4,USDT,f1,XBTUSDTM,open_f1",
        "2026-01-01T02:00:00Z,closing_balance,,9899.4,USDT,,,",
        ""]


def test_bad_parameters_are_refused_with_their_codes() -> None:
    _, client = traded()
    cases = {
        "/api/v1/account/ledger?kind=gift": "invalid_kind",
        "/api/v1/account/ledger?from=yesterday": "invalid_time",
        "/api/v1/account/ledger?from=2026-01-01T00:00:00": "invalid_time",
        "/api/v1/account/ledger?to=": "invalid_time",
        "/api/v1/account/ledger?kind=": "invalid_kind",
        "/api/v1/account/statement?from=&to=2026-01-01T00:00:00Z": "invalid_time",
        "/api/v1/account/ledger?from=2026-01-02T00:00:00Z&to=2026-01-01T00:00:00Z":
            "invalid_period",
        "/api/v1/account/ledger?cursor=nope": "invalid_cursor",
        "/api/v1/account/ledger?page=2": "unknown_parameters",
        "/api/v1/account/statement?from=2026-01-01T00:00:00Z": "missing_parameter",
        "/api/v1/account/statement?from=2026-01-01T00:00:00Z&to=2026-01-01T00:00:00Z":
            "invalid_period",
    }
    for path, code in cases.items():
        template = path.split("?")[0]
        response = call(client, "GET", template, path=path)
        assert (response.status_code, response.get_json()["error"]["code"]) == (400, code), path


def test_times_at_the_ends_of_the_calendar_are_clamped() -> None:
    _, client = traded()

    body = page(client, "?from=0001-01-01T00:00:00%2B23:59&to=9999-12-31T23:59:59-23:59")

    assert len(body["items"]) == 4
