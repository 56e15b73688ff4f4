"""Settlement services: open on an execution, close on a priced mark, initialise accounts.

Each service is one transaction that re-reads the documents it acts on and
does nothing when the work is already done, so the same event delivered
twice, or many events racing for one document, settle exactly once. A plain
read first skips the transaction when the work is visibly done, so late
duplicates do not fight the winner for the document's locks.
"""

from __future__ import annotations

import logging

from cogmora_backend import journal, paths
from cogmora_backend.store import SERVER_TIME, Database, Transaction
from cogmora_core.config import LimitsConfig, TradingConfig
from cogmora_core.contract import executions, ledger, users
from cogmora_core.contract.executions import is_pending, parse_execution
from cogmora_core.contract.history import history_close_fields, history_open_document
from cogmora_core.contract.positions import is_priced_close, parse_position, position_document
from cogmora_core.contract.users import (
    POSITION_COUNT,
    account_balance,
    position_count,
    position_count_after_close,
)
from cogmora_core.errors import Reason, Rejected, RetryableError
from cogmora_core.events import (
    AccountInitialized,
    CloseRejected,
    ExecutionFilled,
    ExecutionRejected,
    Outcome,  # noqa: F401  (re-exported: the services' result type)
    PositionSettled,
    Skip,
    Skipped,
)
from cogmora_core.trading import (
    check_affordable,
    check_balance,
    close_position,
    open_position,
)

log = logging.getLogger(__name__)


def load_config(database: Database) -> TradingConfig:
    """Return the trading config from `config/trading`, defaults where absent."""
    config = TradingConfig.from_document(database.read(paths.CONFIG_TRADING))
    for problem in config.problems:
        log.warning("config/trading ignored a field", extra={"problem": problem})
    return config


def initialize_account(database: Database, uid: str, config: TradingConfig,
                       create: bool = False) -> AccountInitialized | Skipped:
    """Give a new user the starting balance and `createdAt`, exactly once (entry `funded`).

    An existing `balance` is never overwritten; a missing `createdAt` is set.
    With `create` (the reconciler, for an execution of a user who never wrote
    `users/{uid}`), a missing user document is created funded.
    """

    def work(tx: Transaction) -> AccountInitialized | Skipped:
        user = tx.get(paths.user(uid))
        if user is None and create:
            tx.set(paths.user(uid), users.funded_account(config.starting_balance, SERVER_TIME))
            journal.record(tx, uid, ledger.funded_entry(config.starting_balance, SERVER_TIME))
            return AccountInitialized(created=True)
        if user is None:
            return Skipped(Skip.NO_USER_DOCUMENT)
        fields = users.missing_account_fields(user, config.starting_balance, SERVER_TIME)
        if not fields:
            return Skipped(Skip.ALREADY_INITIALIZED)
        tx.update(paths.user(uid), fields)
        if "balance" in fields:
            journal.record(tx, uid, ledger.funded_entry(config.starting_balance, SERVER_TIME))
        return AccountInitialized()

    return database.run(work)


class _NotCounted(RetryableError):
    """The account has no `openPositionCount` yet: count its positions first."""


def settle_execution(
    database: Database, uid: str, execution_id: str, config: TradingConfig,
    limits: LimitsConfig | None = None,
) -> ExecutionFilled | ExecutionRejected | Skipped:
    """Open the position of a `pending` execution, or reject it with a reason.

    In one transaction: debit margin (or cost) plus fee (journal entry
    `open_{id}`), create the position and its history record (both with the
    execution's id), mark the execution `filled` with `positionId`. A
    rejection debits nothing. An execution that is no longer `pending` is
    left alone. Raises `RetryableError` while the account has no balance
    yet (the reconciler tries again later). An
    execution that would take the user past `maxOpenPositions` is rejected
    with `too_many_positions`; the user document counts open positions
    (`openPositionCount`), started from a listing the first time.
    """
    execution_path = paths.execution(uid, execution_id)
    max_positions = (limits or LimitsConfig()).max_open_positions
    counted: list[int] = []

    def done() -> Skipped | None:
        seen = database.read(execution_path)
        return None if is_pending(seen) else Skipped(Skip.NOT_PENDING)

    def work(tx: Transaction) -> ExecutionFilled | ExecutionRejected | Skipped:
        execution = tx.get(execution_path)
        if execution is None or not is_pending(execution):
            return Skipped(Skip.NOT_PENDING)
        user = tx.get(paths.user(uid))
        try:
            balance = account_balance(user)
            order, price = parse_execution(execution)
            count = position_count(user)
            if count is None:
                if not counted:
                    raise _NotCounted
                count = counted[0]
            if count >= max_positions:
                raise Rejected(Reason.TOO_MANY_POSITIONS,
                               f"{count} open positions; at most {max_positions} (config/limits)")
            check_affordable(balance, order, config)
            opened = open_position(order, price, config)
            check_balance(balance, opened)
        except Rejected as rejection:
            tx.update(execution_path,
                      executions.rejected_fields(rejection.reason, rejection.detail, SERVER_TIME))
            return ExecutionRejected(rejection.reason, rejection.detail)
        opened_at = execution.get("executedAt") or SERVER_TIME
        tx.set(
            paths.position(uid, execution_id), position_document(opened, execution_id, opened_at)
        )
        tx.set(
            paths.history(uid, execution_id),
            history_open_document(opened, execution_id, opened_at),
        )
        tx.update(paths.user(uid), {**users.balance_fields(balance - opened.debit),
                                    POSITION_COUNT: count + 1})
        journal.record(tx, uid, ledger.open_entry(execution_id, opened.symbol, opened.margin,
                                                  opened.open_fee, balance - opened.debit,
                                                  SERVER_TIME))
        tx.update(execution_path, executions.filled_fields(execution_id, SERVER_TIME))
        return ExecutionFilled(execution_id)

    outcome: ExecutionFilled | ExecutionRejected | Skipped
    try:
        outcome = database.run(work, done)
    except _NotCounted:
        # An account not counted yet: list its positions once, outside the transaction.
        counted.append(len(database.list(f"{paths.user(uid)}/openPositions")))
        outcome = database.run(work, done)
    log.info(
        "execution settled",
        extra={
            "uid": uid,
            "executionId": execution_id,
            "outcome": outcome.kind,
            "reason": outcome.reason,
        },
    )
    return outcome


def settle_close(database: Database, uid: str, position_id: str, config: TradingConfig
                 ) -> PositionSettled | CloseRejected | Skipped:
    """Settle a `closing` position that the worker priced.

    In one transaction: credit the balance (journal entry `close_{id}`),
    complete the history record (with `closeRequestedAt`, the close
    request's time) and delete the position. A position already settled
    (deleted), not `closing`, or without a price is left alone. A position
    that cannot be evaluated keeps its mark and gets `details.settlementError`.
    """
    position_path = paths.position(uid, position_id)
    history_path = paths.history(uid, position_id)

    def done() -> Skipped | None:
        if is_priced_close(database.read(position_path)):
            return None
        return Skipped(Skip.NOT_A_PRICED_CLOSE)

    def work(tx: Transaction) -> PositionSettled | CloseRejected | Skipped:
        position = tx.get(position_path)
        if not is_priced_close(position):
            return Skipped(Skip.NOT_A_PRICED_CLOSE)
        assert position is not None
        user = tx.get(paths.user(uid))
        history = tx.get(history_path)
        try:
            balance = account_balance(user)
            state = parse_position(position)
            assert state.close_request is not None and state.close_request.price is not None
            settlement = close_position(state, state.close_request.price, config)
        except Rejected as rejection:
            if position["details"].get("settlementError") != rejection.reason:
                tx.update(
                    position_path,
                    {
                        "details.settlementError": rejection.reason,
                        "details.settlementErrorDetail": rejection.detail,
                    },
                )
            return CloseRejected(rejection.reason, rejection.detail)
        record = history_close_fields(settlement, state.close_request, SERVER_TIME)
        # Funding judges a settled position by when its close was asked for.
        requested_at = position["details"]["closeRequest"].get("at")
        if requested_at is not None:
            record["closeRequestedAt"] = requested_at
        if history is None:
            opened_at = position.get("openedAt") or SERVER_TIME
            record = {**history_open_document(state, position_id, opened_at), **record}
        tx.set(history_path, record, merge=True)
        tx.update(paths.user(uid), {**users.balance_fields(balance + settlement.credit),
                                    **position_count_after_close(user)})
        journal.record(tx, uid, ledger.close_entry(
            position_id, state.symbol, settlement, state.funding,
            str(state.close_request.reason), balance + settlement.credit, SERVER_TIME))
        tx.delete(position_path)
        return PositionSettled(settlement.credit)

    outcome = database.run(work, done)
    log.info(
        "close settled",
        extra={
            "uid": uid,
            "positionId": position_id,
            "outcome": outcome.kind,
            "reason": outcome.reason,
        },
    )
    return outcome
