"""The data contract (DESIGN.md §2), one module per collection.

Each module holds, side by side, what the code reads from a collection's
documents (a parser into the core's typed values, which raises `Rejected`
with a stable reason) and what it writes to them (builders of whole
documents and of the fields one transition updates), with the `Status`
values the collection's documents move through. The values are the
strings DESIGN.md names and the web app reads: never rename one.

| module | collection | statuses |
|---|---|---|
| `users` | `users/{uid}` | (balance, `openPositionCount`) |
| `triggers` | `users/{uid}/tradeTriggers` | `TriggerStatus`: active, cancelled, rejected |
| `executions` | `users/{uid}/executedTriggers` | `ExecutionStatus`: pending, filled, rejected |
| `positions` | `users/{uid}/openPositions` | `PositionStatus`: open, closing |
| `history` | `users/{uid}/tradeHistory` | `HistoryStatus`: open, closed |
| `funding` | `fundingEvents` | `FundingStatus`: pending, applied |
| `ledger` | `users/{uid}/ledger` | `EntryKind`: funded, open, close, funding, adjustment |

Pure and standard-library only, like the rest of the core: a field the
server stamps (`createdAt`, `executedAt`, `closedAt`…) is passed in by the
caller (the storage layer's `SERVER_TIME`). Money is rounded here, once, to
its written precision (`money.to_firestore`, `to_firestore_price`).
"""
