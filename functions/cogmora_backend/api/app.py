"""The Flask app of the HTTP API: routes, authentication and JSON errors.

`create_app` takes the database and the token verifier, so unit tests run it
on the in-memory database; `serve` runs the production app (Firestore,
Firebase Auth) for the `api` function. docs/openapi.yaml describes every route.
"""

from __future__ import annotations

import functools
import logging
import secrets
import string
import time
from collections.abc import Callable
from datetime import UTC, datetime
from typing import Any, cast

from flask import Flask, Response, g, jsonify, request
from werkzeug.exceptions import HTTPException
from werkzeug.routing import BaseConverter

from cogmora_backend import paths
from cogmora_backend.api import API_VERSION, statements
from cogmora_backend.api.errors import ApiError, Code
from cogmora_backend.api.guards import (
    IDEMPOTENCY_HEADER,
    REPLAYED_HEADER,
    Answer,
    count_request,
    create_once,
    idempotency_key,
)
from cogmora_backend.api.orders import (
    as_mapping,
    check_document_id,
    load_json,
    oco_documents,
    trigger_document,
)
from cogmora_backend.api.views import assets_view, document_view, to_json
from cogmora_backend.queries import HISTORY_PAGE
from cogmora_backend.store import CursorMissing, Database, Transaction
from cogmora_core.contract.positions import PositionStatus
from cogmora_core.contract.triggers import TriggerStatus
from cogmora_core.money import parse_number

log = logging.getLogger(__name__)

#: Largest request body accepted (413 above it): an order is a few hundred bytes.
MAX_BODY_BYTES = 16 * 1024
HISTORY_DEFAULT_LIMIT = 50
HISTORY_MAX_LIMIT = 100
#: Tolerance for an ID token issued by a clock slightly ahead of ours.
CLOCK_SKEW_SECONDS = 60
_ID_ALPHABET = string.ascii_letters + string.digits
_EPOCH = datetime(1970, 1, 1, tzinfo=UTC)
#: Maps an ID token to the uid it was issued to, or raises `ApiError` (401).
TokenVerifier = Callable[[str], str]
#: The routes under /api/v1/trade/ that are not trigger ids (DELETE there is 405).
TRADE_ROUTES = ("create", "order", "oco", "close")


class TriggerIdConverter(BaseConverter):
    """A trigger id in a path: any segment but the names of the trade routes.

    So `DELETE /api/v1/trade/create` is a wrong method on the create route
    (405, `Allow: POST`), never the cancel of a trigger named `create`.
    """

    regex = rf"(?!(?:{'|'.join(TRADE_ROUTES)})\Z)[^/]+"


def new_document_id() -> str:
    """Return a random 20-character id, like the ids Firestore's SDKs generate."""
    return "".join(secrets.choice(_ID_ALPHABET) for _ in range(20))


def create_app(database: Callable[[], Database], verify_token: TokenVerifier,
               now: Callable[[], datetime] = lambda: datetime.now(UTC)) -> Flask:
    """Return the API's Flask app on `database` (asked for on each request) and `verify_token`.

    `now` is the clock of rate-limit windows and idempotency keys.
    """
    app = Flask("cogmora_api")
    app.url_map.converters["trigger_id"] = TriggerIdConverter
    app.config["MAX_CONTENT_LENGTH"] = MAX_BODY_BYTES
    app.config["PROVIDE_AUTOMATIC_OPTIONS"] = False  # OPTIONS is no documented method: 405
    app.json.sort_keys = False  # type: ignore[attr-defined]  # answer fields in written order

    def signed_in_uid() -> str:
        header = request.headers.get("Authorization")
        if not header:
            raise ApiError(401, Code.MISSING_TOKEN, "send 'Authorization: Bearer <ID token>'")
        scheme, _, token = header.partition(" ")
        token = token.strip()
        if scheme.lower() != "bearer" or not token:
            raise ApiError(401, Code.INVALID_TOKEN, "the Authorization header is not "
                           "'Bearer <ID token>'")
        return verify_token(token)

    def body() -> Any:
        return load_json(request.get_data(cache=False))

    @app.before_request
    def authenticate_and_count() -> None:
        # Every route but /health: authenticate, then count the request against the
        # user's rate limit (a request that is not signed in is refused uncounted).
        if request.url_rule is None or request.url_rule.endpoint == "health":
            return
        g.uid = signed_in_uid()
        count_request(database(), g.uid, now())

    def create_answer(documents: dict[str, dict[str, Any]], answer: Any, data: Any,
                      key: str | None) -> Response:
        uid: str = g.uid
        first = Answer(201, app.json.dumps(answer))
        result = create_once(database(), uid, key, (request.method, request.path, data),
                             documents, first, now())
        response = Response(result.text, result.status, mimetype="application/json")
        if result.replayed:
            response.headers[REPLAYED_HEADER] = "true"
        return response

    @app.get("/health")
    def health() -> Any:
        return {"status": "ok", "version": API_VERSION}

    def create(market: bool) -> Any:
        key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        data = body()
        document = trigger_document(data, market=market)
        trigger_id = new_document_id()
        return create_answer({paths.trigger(g.uid, trigger_id): document},
                             {"id": trigger_id, "trigger": document_view(trigger_id, document)},
                             data, key)

    @app.post("/api/v1/trade/create")
    def create_trigger() -> Any:
        return create(market=False)

    @app.post("/api/v1/trade/order")
    def create_market_order() -> Any:
        return create(market=True)

    @app.post("/api/v1/trade/oco")
    def create_oco_pair() -> Any:
        key = idempotency_key(request.headers.get(IDEMPOTENCY_HEADER))
        data = body()
        ids = (new_document_id(), new_document_id())
        documents = oco_documents(data, ids)
        pairs = list(zip(ids, documents, strict=True))
        # Both or neither, in one commit: the link is mutual.
        return create_answer({paths.trigger(g.uid, i): d for i, d in pairs},
                             {"ids": list(ids),
                              "triggers": [document_view(i, d) for i, d in pairs]},
                             data, key)

    @app.post("/api/v1/trade/close")
    def close_position() -> Any:
        uid = g.uid
        data = as_mapping(body())
        unknown = sorted(set(data) - {"positionId"})
        if unknown:
            raise ApiError(400, Code.UNKNOWN_FIELDS,
                           f"unknown fields: {', '.join(unknown)}; allowed: positionId",
                           unknown[0])
        raw_id = data.get("positionId")
        if raw_id is None:
            raise ApiError(400, Code.MISSING_FIELD, "positionId is required", "positionId")
        if not isinstance(raw_id, str):
            raise ApiError(400, Code.INVALID_POSITION_ID, "positionId must be a string",
                           "positionId")
        position_id = check_document_id(raw_id)
        missing = ApiError(404, Code.POSITION_NOT_FOUND, f"no position {raw_id!r}")
        if position_id is None:
            raise missing
        # What the app writes: only details.status, open -> closing (firestore.rules).
        position = _move_status(database(), paths.position(uid, position_id),
                                f"position {position_id}", PositionStatus.OPEN.value,
                                PositionStatus.CLOSING.value, missing,
                                Code.POSITION_NOT_OPEN)
        return {"id": position_id, "position": document_view(position_id, position)}, 202

    @app.delete("/api/v1/trade/<trigger_id:triggerId>")
    def cancel_trigger(triggerId: str) -> Any:  # the documented path parameter's name
        uid = g.uid
        trigger_id = check_document_id(triggerId)
        missing = ApiError(404, Code.TRIGGER_NOT_FOUND, f"no trigger {triggerId!r}")
        if trigger_id is None:
            raise missing
        # What the app writes to cancel: details.status -> cancelled, nothing else.
        trigger = _move_status(database(), paths.trigger(uid, trigger_id),
                               f"trigger {trigger_id}", TriggerStatus.ACTIVE.value,
                               TriggerStatus.CANCELLED.value, missing,
                               Code.TRIGGER_NOT_ACTIVE)
        return {"id": trigger_id, "trigger": document_view(trigger_id, trigger)}

    @app.get("/api/v1/account/balance")
    def balance() -> Any:
        uid = g.uid
        user = database().read(paths.user(uid))
        if user is None or user.get("balance") is None:
            raise ApiError(404, Code.ACCOUNT_NOT_FOUND,
                           "the account has no balance yet: it is funded when users/{uid} "
                           "is created")
        amount = parse_number(user["balance"])
        if amount is None:
            raise RuntimeError(f"users/{uid} has an unreadable balance")
        return {"balance": to_json(amount), "currency": "USDT"}

    @app.get("/api/v1/account/positions")
    def positions() -> Any:
        uid = g.uid
        rows = database().list(f"{paths.user(uid)}/openPositions")
        rows.sort(key=_opened_at, reverse=True)  # newest first, as the history
        return {"positions": [document_view(doc_id, doc) for doc_id, doc in rows]}

    @app.get("/api/v1/account/history")
    def history() -> Any:
        uid = g.uid
        _check_parameters("limit", "cursor")
        limit = _limit(request.args.get("limit"))
        cursor = _cursor(request.args.get("cursor"))
        try:
            rows = database().page(HISTORY_PAGE, f"{paths.user(uid)}/tradeHistory",
                                   limit + 1, cursor)
        except CursorMissing:
            raise ApiError(400, Code.INVALID_CURSOR, "cursor is not one this API gave",
                           "cursor") from None
        page = rows[:limit]
        next_cursor = page[-1][0] if len(rows) > limit else None
        return {"items": [document_view(doc_id, doc) for doc_id, doc in page],
                "nextCursor": next_cursor}

    @app.get("/api/v1/account/ledger")
    def ledger_page() -> Any:
        _check_parameters("limit", "cursor", "kind", "from", "to")
        limit = _limit(request.args.get("limit"))
        cursor = _cursor(request.args.get("cursor"))
        kind = statements.parse_kind(request.args.get("kind"))
        since = statements.parse_time(request.args.get("from"), "from")
        before = statements.parse_time(request.args.get("to"), "to")
        statements.check_period(since, before)
        return statements.ledger_page(database(), g.uid, limit, cursor, kind, since, before)

    @app.get("/api/v1/account/statement")
    def statement() -> Any:
        _check_parameters("from", "to")
        since = statements.parse_time(request.args.get("from"), "from")
        before = statements.parse_time(request.args.get("to"), "to")
        for name, value in (("from", since), ("to", before)):
            if value is None:
                raise ApiError(400, Code.MISSING_PARAMETER, f"{name} is required", name)
        assert since is not None and before is not None
        statements.check_period(since, before)
        opening, rows, closing = statements.statement(database(), g.uid, since, before)
        if request.accept_mimetypes.best_match(["application/json", "text/csv"]) == "text/csv":
            return Response(statements.statement_csv(since, before, opening, rows, closing),
                            200, mimetype="text/csv")
        return statements.statement_json(since, before, opening, rows, closing)

    @app.get("/api/v1/account/assets")
    def assets() -> Any:
        return assets_view()

    @app.errorhandler(ApiError)
    def api_error(error: ApiError) -> Response:
        return _error_response(error)

    @app.errorhandler(HTTPException)
    def http_error(error: HTTPException) -> Response:
        status = error.code or 500
        code, message = _HTTP_CODES.get(status, (f"http_{status}", error.description or ""))
        response = _error_response(ApiError(status, code, message))
        allow = error.get_response().headers.get("Allow")
        if allow:
            response.headers["Allow"] = allow
        return response

    @app.errorhandler(Exception)
    def unexpected(error: Exception) -> Response:
        log.exception("api: unexpected error on %s %s", request.method, request.path)
        return _error_response(ApiError(500, Code.INTERNAL, "internal error"))

    return app


_HTTP_CODES = {
    400: (Code.INVALID_JSON, "the request could not be read"),
    404: (Code.NOT_FOUND, "no such route: see docs/openapi.yaml"),
    405: (Code.METHOD_NOT_ALLOWED, "method not allowed on this route"),
    413: (Code.BODY_TOO_LARGE, f"the body is larger than {MAX_BODY_BYTES} bytes"),
}


def _error_response(error: ApiError) -> Response:
    response = jsonify(error.body())
    response.status_code = error.status
    response.headers.update(error.headers)
    if error.status == 401:
        response.headers["WWW-Authenticate"] = f'Bearer error="{error.code}"'
    return response


def _move_status(database: Database, path: str, label: str, expected: str, new: str,
                 missing: ApiError, conflict: str) -> dict[str, Any]:
    """Change a document's `details.status` from `expected` to `new`, and nothing else.

    In one transaction that reads the status first: a missing document raises
    `missing`, another status a 409 with the code `conflict`. Returns the
    document as it now is (`label` names it in the conflict's message).
    """

    def work(tx: Transaction) -> dict[str, Any]:
        document = tx.get(path)
        if document is None:
            raise missing
        status = _status(document)
        if status != expected:
            raise ApiError(409, conflict,
                           f"{label} is {status!r}, not {expected!r}")
        tx.update(path, {"details.status": new})
        document["details"]["status"] = new
        return document

    return database.run(work)


def _status(document: dict[str, Any]) -> object:
    details = document.get("details")
    return details.get("status") if isinstance(details, dict) else None


def _opened_at(row: tuple[str, dict[str, Any]]) -> tuple[datetime, str]:
    opened = row[1].get("openedAt")
    if not isinstance(opened, datetime):
        return (_EPOCH, row[0])
    return (opened if opened.tzinfo else opened.replace(tzinfo=UTC), row[0])


def _check_parameters(*allowed: str) -> None:
    """Raise 400 `unknown_parameters` when the query names a parameter not `allowed`."""
    unknown = sorted(set(request.args) - set(allowed))
    if unknown:
        raise ApiError(400, Code.UNKNOWN_PARAMETERS,
                       f"unknown query parameters: {', '.join(unknown)}; allowed: "
                       f"{', '.join(allowed)}", unknown[0])


def _cursor(raw: str | None) -> str | None:
    """Return a page cursor (a document id), None for the first page, or raise 400."""
    if not raw:  # absent or empty: the first page
        return None
    cursor = check_document_id(raw)
    if cursor is None:
        raise ApiError(400, Code.INVALID_CURSOR, "cursor is not one this API gave", "cursor")
    return cursor


def _limit(raw: str | None) -> int:
    if raw is None:
        return HISTORY_DEFAULT_LIMIT
    if not raw.isascii() or not raw.isdigit() or not 1 <= int(raw) <= HISTORY_MAX_LIMIT:
        raise ApiError(400, Code.INVALID_LIMIT,
                       f"limit must be a whole number from 1 to {HISTORY_MAX_LIMIT}", "limit")
    return int(raw)


def verify_firebase_token(token: str) -> str:
    """Return the uid of a Firebase ID token, or raise `ApiError` (401, or 503).

    Signature, issuer, audience (this project) and expiry are checked, and the
    account is looked up in Firebase Auth (`check_revoked`): a disabled or
    deleted account, or a token issued before the account's tokens were
    revoked, is refused at once, not when the token expires an hour later.
    On the emulators (FIREBASE_AUTH_EMULATOR_HOST) the Admin SDK accepts
    unsigned tokens and looks accounts up in the Auth emulator.
    """
    import firebase_admin
    from firebase_admin import auth, exceptions

    if not firebase_admin._apps:
        firebase_admin.initialize_app()
    try:
        claims = auth.verify_id_token(token, check_revoked=True)
    except auth.ExpiredIdTokenError:
        raise ApiError(401, Code.TOKEN_EXPIRED, "the ID token has expired") from None
    except auth.RevokedIdTokenError:
        # The emulator's unsigned tokens reach the revocation check unexpired or
        # not: an old token answers token_expired there too, as in production.
        _check_times(auth.verify_id_token(token))
        raise ApiError(401, Code.TOKEN_REVOKED, "the ID token has been revoked: sign in "
                       "again") from None
    except auth.UserDisabledError:
        raise ApiError(401, Code.USER_DISABLED, "the account is disabled") from None
    except auth.UserNotFoundError:
        raise ApiError(401, Code.USER_NOT_FOUND, "the ID token's account does not exist") \
            from None
    except auth.InvalidIdTokenError:
        raise ApiError(401, Code.INVALID_TOKEN, "the ID token is not valid") from None
    except (auth.CertificateFetchError, exceptions.FirebaseError):
        log.exception("api: cannot verify the token (certificates or the account lookup)")
        raise ApiError(503, Code.AUTH_UNAVAILABLE, "cannot verify tokens now") from None
    _check_times(claims)
    uid = check_document_id(claims.get("uid"))
    if uid is None:
        raise ApiError(401, Code.INVALID_TOKEN, "the ID token names no usable user")
    return uid


def _check_times(claims: dict[str, Any]) -> None:
    """Raise `ApiError` 401 unless the token's `exp`/`iat` claims make it current.

    The Admin SDK checks times only with a token's signature, which the Auth
    emulator does not have: check them here too, so both refuse the same tokens.
    """
    expires, issued, now = _number(claims.get("exp")), _number(claims.get("iat")), time.time()
    if expires is None or issued is None or issued > now + CLOCK_SKEW_SECONDS:
        raise ApiError(401, Code.INVALID_TOKEN, "the ID token has no valid exp/iat claims")
    if expires <= now:
        raise ApiError(401, Code.TOKEN_EXPIRED, "the ID token has expired")


def _number(value: object) -> float | None:
    """Return a claim that is a JSON number (never a bool), else None."""
    if isinstance(value, int | float) and not isinstance(value, bool):
        return float(value)
    return None


@functools.cache
def production_app() -> Flask:
    """Return the app on Firestore and Firebase Auth, created on first use."""
    from cogmora_backend import firestore_client

    return create_app(firestore_client.database, verify_firebase_token)


def serve(incoming: Any) -> Response:
    """Answer one request of the `api` function (a Flask request) with the API's app."""
    # `from_app` builds an instance of the class it is called on: a Flask response.
    return cast(Response, Response.from_app(production_app(), incoming.environ))
