"""Settlement services: open on an execution, close on a priced mark, initialise accounts.

Each service is one transaction that re-reads the documents it acts on and
does nothing when the work is already done, so the same event delivered
twice, or many events racing for one document, settle exactly once. A plain
read first skips the transaction when the work is visibly done, so late
duplicates do not fight the winner for the document's locks.
"""

from __future__ import annotations

import logging
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime
from decimal import Decimal
from typing import Any

from cogmora_backend import journal, paths, queries
from cogmora_backend.store import SERVER_TIME, Database, Snapshot, Transaction
from cogmora_core.config import LimitsConfig, TradingConfig
from cogmora_core.contract import executions, ledger, users
from cogmora_core.contract.executions import ExecutionStatus, is_pending, parse_execution
from cogmora_core.contract.history import history_close_fields, history_open_document
from cogmora_core.contract.positions import (
    PositionStatus,
    is_priced_close,
    parse_position,
    position_document,
)
from cogmora_core.contract.users import (
    POSITION_COUNT,
    account_balance,
    position_count,
)
from cogmora_core.errors import Reason, Rejected, RetryableError
from cogmora_core.events import (
    AccountInitialized,
    CloseRejected,
    ExecutionFilled,
    ExecutionRejected,
    Outcome,
    PositionSettled,
    Skip,
    Skipped,
)
from cogmora_core.money import quantize
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


#: Firestore's limit of writes in one commit: one account transaction stays within it.
MAX_WRITES = 500
#: Writes of settling one execution (position, history, execution, journal entry)
#: and one close (history, delete, journal entry); the account's own update is one
#: more per transaction.
_OPEN_WRITES, _CLOSE_WRITES = 4, 3


@dataclass
class _Account:
    """A user's balance and open-position count, as one transaction moves them.

    Each settlement in the transaction starts from the balance the previous
    one left, as its journal entry records it (`balanceAfter`, rounded once
    as written), and the user document is written once, at the end.
    """

    balance: Decimal | None
    #: Why the balance cannot be used (each settlement reports it as its own).
    invalid: Rejected | None
    count: int | None
    changed: bool = False

    @classmethod
    def of(cls, user: Mapping[str, Any] | None) -> _Account:
        """Read the account; raises `RetryableError` while it is not funded yet."""
        try:
            return cls(account_balance(user), None, position_count(user))
        except Rejected as rejection:
            return cls(None, rejection, position_count(user))

    def usable_balance(self) -> Decimal:
        """Return the balance, or raise the rejection that makes it unusable."""
        if self.invalid is not None:
            raise self.invalid
        assert self.balance is not None
        return self.balance

    def write(self, tx: Transaction, uid: str) -> None:
        """Write the balance (and the count, once counted) if a settlement moved them."""
        if not self.changed:
            return
        assert self.balance is not None
        fields: dict[str, Any] = users.balance_fields(self.balance)
        if self.count is not None:
            fields[POSITION_COUNT] = self.count
        tx.update(paths.user(uid), fields)


def _open(tx: Transaction, uid: str, execution_id: str, execution: Mapping[str, Any],
          account: _Account, config: TradingConfig, max_positions: int,
          counted: int | None) -> ExecutionFilled | ExecutionRejected:
    """Open the position of a pending execution against `account` (writes in `tx`).

    Raises `_NotCounted` when the account's positions must be counted first
    (`counted` is that count, once listed).
    """
    execution_path = paths.execution(uid, execution_id)
    try:
        balance = account.usable_balance()
        order, price = parse_execution(execution)
        count = account.count
        if count is None:
            if counted is None:
                raise _NotCounted
            count = counted
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
    tx.set(paths.position(uid, execution_id),
           position_document(opened, execution_id, opened_at))
    tx.set(paths.history(uid, execution_id),
           history_open_document(opened, execution_id, opened_at))
    account.balance, account.count, account.changed = (
        quantize(balance - opened.debit), count + 1, True)
    journal.record(tx, uid, ledger.open_entry(execution_id, opened.symbol, opened.margin,
                                              opened.open_fee, account.balance, SERVER_TIME))
    tx.update(execution_path, executions.filled_fields(execution_id, SERVER_TIME))
    return ExecutionFilled(execution_id)


def _close(tx: Transaction, uid: str, position_id: str, position: Mapping[str, Any],
           history: Mapping[str, Any] | None, account: _Account,
           config: TradingConfig) -> PositionSettled | CloseRejected:
    """Settle a priced close against `account` (writes in `tx`)."""
    position_path = paths.position(uid, position_id)
    try:
        balance = account.usable_balance()
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
    tx.set(paths.history(uid, position_id), record, merge=True)
    account.balance, account.changed = quantize(balance + settlement.credit), True
    if account.count is not None:
        account.count = max(0, account.count - 1)
    journal.record(tx, uid, ledger.close_entry(
        position_id, state.symbol, settlement, state.funding, str(state.close_request.reason),
        account.balance, SERVER_TIME))
    tx.delete(position_path)
    return PositionSettled(settlement.credit)


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
        account = _Account.of(tx.get(paths.user(uid)))
        outcome = _open(tx, uid, execution_id, execution, account, config, max_positions,
                        counted[0] if counted else None)
        account.write(tx, uid)
        return outcome

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
        account = _Account.of(user)
        outcome = _close(tx, uid, position_id, position, history, account, config)
        account.write(tx, uid)
        return outcome

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


def settle_account(database: Database, uid: str, config: TradingConfig,
                   limits: LimitsConfig | None = None, asked: str | None = None
                   ) -> dict[str, Outcome]:
    """Settle the pending marks of one user together: priced closes, then executions.

    What a storm leaves on one account (a whale's hundreds of liquidations)
    is settled in as few transactions as Firestore's 500 writes allow, each
    re-reading every document it settles and the user once, instead of one
    transaction per mark, each queued behind the others on the balance.
    Within a transaction the closes come first (they free money), oldest
    mark first, then the executions, oldest first; each settles exactly as
    `settle_close` / `settle_execution` would on the balance the previous
    left, and the balance is written once. A mark settled already (by a
    duplicate event, the reconciler or a racing call) is skipped.

    `asked` is the path of the mark whose event called this (its caller has
    just read it pending): only marks of its kind are settled (one query;
    the other kind has events of its own), `asked` always among them. The
    transaction holding `asked`, when it loses a race, steps aside once
    `asked` is settled (the winner settled the others of that transaction
    then); the other transactions go on (a rival's work is skipped as they
    re-read). Returns the outcome of every
    mark it looked at, by path. Raises `RetryableError` while the account has
    no balance yet (the reconciler funds it later).
    """
    user_path = paths.user(uid)
    max_positions = (limits or LimitsConfig()).max_open_positions
    outcomes: dict[str, Outcome] = {}

    def settled(path: str) -> Skipped | None:
        seen = database.read(path)
        if _is_execution(path):
            return None if is_pending(seen) else Skipped(Skip.NOT_PENDING)
        return None if is_priced_close(seen) else Skipped(Skip.NOT_A_PRICED_CLOSE)

    closes: list[Snapshot] = []
    opens: list[Snapshot] = []
    if asked is None or not _is_execution(asked):
        closes = sorted((s for s in database.query(
            queries.USER_CLOSING_POSITIONS, (PositionStatus.CLOSING.value,), parent=user_path)
            if is_priced_close(s.data)), key=_requested_at)
    if asked is None or _is_execution(asked):
        opens = sorted(database.query(queries.USER_PENDING_EXECUTIONS,
                                      (ExecutionStatus.PENDING.value,), parent=user_path),
                       key=_executed_at)
    for chunk in _chunks([*closes, *opens]):
        # Only the transaction holding `asked` learns from it: once settled (by
        # that transaction itself, or by a rival), the other transactions still
        # have marks of their own to settle.
        holds = asked if any(mark.path == asked for mark in chunk) else None
        outcomes.update(_settle_chunk(database, uid, chunk, config, max_positions, holds,
                                      settled))
    if asked is not None and asked not in outcomes:  # written after the query looked
        outcomes[asked] = (
            settle_execution(database, uid, asked.rsplit("/", 1)[1], config, limits)
            if _is_execution(asked)
            else settle_close(database, uid, asked.rsplit("/", 1)[1], config))
    log.info("account settled", extra={
        "uid": uid, "marks": len(outcomes),
        "outcomes": {kind: sum(o.kind == kind for o in outcomes.values())
                     for kind in {o.kind for o in outcomes.values()}}})
    return outcomes


def _is_execution(path: str) -> bool:
    return "/executedTriggers/" in path


def _requested_at(snapshot: Snapshot) -> tuple[Any, str]:
    request = (snapshot.data.get("details") or {}).get("closeRequest") or {}
    at = request.get("at")
    return (at.timestamp() if isinstance(at, datetime) else 0.0, snapshot.path)


def _executed_at(snapshot: Snapshot) -> tuple[Any, str]:
    at = snapshot.data.get("executedAt")
    return (at.timestamp() if isinstance(at, datetime) else 0.0, snapshot.path)


def _chunks(marks: list[Snapshot]) -> list[list[Snapshot]]:
    """Split marks so that each transaction writes at most `MAX_WRITES` documents."""
    chunks: list[list[Snapshot]] = []
    current: list[Snapshot] = []
    writes = 1  # the account
    for mark in marks:
        cost = _OPEN_WRITES if _is_execution(mark.path) else _CLOSE_WRITES
        if current and writes + cost > MAX_WRITES:
            chunks.append(current)
            current, writes = [], 1
        current.append(mark)
        writes += cost
    if current:
        chunks.append(current)
    return chunks


def _settle_chunk(database: Database, uid: str, chunk: list[Snapshot], config: TradingConfig,
                  max_positions: int, asked: str | None,
                  settled: Callable[[str], Skipped | None]) -> dict[str, Outcome]:
    """Settle `chunk` (closes first, then executions) in one transaction."""
    counted: list[int] = []
    reads = [paths.user(uid)]
    for mark in chunk:
        reads.append(mark.path)
        if "/openPositions/" in mark.path:
            reads.append(paths.history(uid, mark.id))

    def work(tx: Transaction) -> dict[str, Outcome]:
        found = dict(zip(reads, tx.get_many(reads), strict=True))
        account = _Account.of(found[paths.user(uid)])
        if account.count is None and counted:
            account.count = counted[0]  # the listing also counted the closes settled here
        done: dict[str, Outcome] = {}
        for mark in chunk:
            current = found[mark.path]
            if _is_execution(mark.path):
                if current is None or not is_pending(current):
                    done[mark.path] = Skipped(Skip.NOT_PENDING)
                    continue
                done[mark.path] = _open(tx, uid, mark.id, current, account, config,
                                        max_positions, counted[0] if counted else None)
            else:
                if not is_priced_close(current):
                    done[mark.path] = Skipped(Skip.NOT_A_PRICED_CLOSE)
                    continue
                assert current is not None
                done[mark.path] = _close(tx, uid, mark.id, current,
                                         found[paths.history(uid, mark.id)], account, config)
        account.write(tx, uid)
        return done

    first = True

    def stepped_aside() -> dict[str, Outcome] | None:
        # Lost a race: once the mark that called us is settled, its settler did the rest.
        # Not asked before the first attempt: the caller has just read `asked` pending.
        nonlocal first
        if first or asked is None:
            first = False
            return None
        found = settled(asked)
        return None if found is None else {asked: found}

    try:
        return database.run(work, stepped_aside)
    except _NotCounted:
        counted.append(len(database.list(f"{paths.user(uid)}/openPositions")))
        return database.run(work, stepped_aside)
