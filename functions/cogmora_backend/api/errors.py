"""Errors the API answers with: an HTTP status and a stable reason code."""

from __future__ import annotations

from cogmora_core.errors import InvalidInput


class ApiError(InvalidInput):
    """Answer the request with `status` and `{"error": {"code", "message"[, "field"]}}`."""

    def __init__(self, status: int, code: str, message: str, field: str | None = None,
                 headers: dict[str, str] | None = None) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.field = field
        #: Headers the answer carries (such as `Retry-After` on a 429).
        self.headers = dict(headers or {})

    def body(self) -> dict[str, object]:
        """Return the JSON body of the error."""
        error: dict[str, object] = {"code": self.code, "message": self.message}
        if self.field is not None:
            error["field"] = self.field
        return {"error": error}


class Code:
    """Error codes of the API (stable strings), besides the core's rejection reasons."""

    INVALID_JSON = "invalid_json"
    INVALID_BODY = "invalid_body"
    UNKNOWN_FIELDS = "unknown_fields"
    MISSING_FIELD = "missing_field"
    MISSING_PARAMETER = "missing_parameter"
    UNSUPPORTED_SYMBOL = "unsupported_symbol"
    INVALID_POSITION_ID = "invalid_position_id"
    INVALID_LIMIT = "invalid_limit"
    INVALID_CURSOR = "invalid_cursor"
    UNKNOWN_PARAMETERS = "unknown_parameters"
    INVALID_TIME = "invalid_time"
    INVALID_PERIOD = "invalid_period"
    INVALID_KIND = "invalid_kind"
    STATEMENT_TOO_LARGE = "statement_too_large"
    MISSING_TOKEN = "missing_token"
    INVALID_TOKEN = "invalid_token"
    TOKEN_EXPIRED = "token_expired"
    TOKEN_REVOKED = "token_revoked"
    USER_DISABLED = "user_disabled"
    USER_NOT_FOUND = "user_not_found"
    INVALID_IDEMPOTENCY_KEY = "invalid_idempotency_key"
    IDEMPOTENCY_KEY_REUSED = "idempotency_key_reused"
    RATE_LIMITED = "rate_limited"
    NOT_FOUND = "not_found"
    TRIGGER_NOT_FOUND = "trigger_not_found"
    POSITION_NOT_FOUND = "position_not_found"
    ACCOUNT_NOT_FOUND = "account_not_found"
    METHOD_NOT_ALLOWED = "method_not_allowed"
    TRIGGER_NOT_ACTIVE = "trigger_not_active"
    POSITION_NOT_OPEN = "position_not_open"
    BODY_TOO_LARGE = "body_too_large"
    INTERNAL = "internal_error"
    AUTH_UNAVAILABLE = "auth_unavailable"
