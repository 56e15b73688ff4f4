"""Seed demo accounts on the emulators and show balances, positions and history live.

Run through scripts/run-local.sh, which starts the emulators first. Demo
accounts are created the way the app and the worker would: user documents
(initializeAccount funds them) and executions (openPositionHandler opens them).
"""

from __future__ import annotations

import argparse
import sys
import time
from typing import Any

from google.cloud import firestore

from tests.support.emulator import firestore_client, wait_for

DEMO_USERS = {
    "demo-alice": [
        {"symbol": "XBTUSDTM", "symbolType": "futures", "action": "long", "amount": 500,
         "leverage": 5, "condition": "below", "targetPrice": 60000, "executedPrice": 60000,
         "stopLoss": 57000, "takeProfit": 66000},
        {"symbol": "SOLUSDTM", "symbolType": "futures", "action": "short", "amount": 250,
         "leverage": 10, "condition": "above", "targetPrice": 140, "executedPrice": 140,
         "stopLoss": 145, "takeProfit": 130},
    ],
    "demo-bob": [
        {"symbol": "BTC-USDT", "symbolType": "spot", "action": "buy", "amount": 1000,
         "condition": "market", "executedPrice": 87956.1, "takeProfit": 95000},
    ],
    "demo-carol": [],
}
DEMO_TRIGGERS = {
    "demo-carol": [
        {"symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below",
         "targetPrice": 60000, "action": "long", "amount": 300, "leverage": 3,
         "stopLoss": 58000, "takeProfit": 66000, "details": {"status": "active"}},
        {"symbol": "SOLUSDTM", "symbolType": "futures", "condition": "above",
         "targetPrice": 141, "action": "short", "amount": 200, "leverage": 5,
         "details": {"status": "active"}},
    ],
}


def seed(db: Any) -> None:
    """Create the demo accounts, their positions and triggers (idempotent)."""
    for uid, executions in DEMO_USERS.items():
        user = db.document(f"users/{uid}")
        if not user.get().exists:
            user.set({"displayName": uid.removeprefix("demo-").title(), "demo": True})
        wait_for(lambda user=user: "balance" in (user.get().to_dict() or {}))
        for index, execution in enumerate(executions):
            ref = db.document(f"users/{uid}/executedTriggers/demo-{index}")
            if not ref.get().exists:
                ref.set({**execution, "triggerId": f"demo-{index}", "status": "pending",
                         "executedAt": firestore.SERVER_TIMESTAMP})
            wait_for(lambda ref=ref: ref.get().get("status") != "pending")
        for index, trigger in enumerate(DEMO_TRIGGERS.get(uid, [])):
            db.document(f"users/{uid}/tradeTriggers/demo-{index}").set(trigger)


def snapshot(db: Any) -> str:
    """Return a text table of every demo account."""
    lines = [f"{'user':<12}{'balance':>18}  {'positions':<48}{'triggers':>9}{'closed':>8}"]
    for uid in DEMO_USERS:
        user = db.document(f"users/{uid}").get().to_dict() or {}
        positions = [
            f"{p.get('symbol')} {p.get('positionType')} x{p.get('leverage')} "
            f"@{p.get('averageEntryPrice')} [{(p.get('details') or {}).get('status')}]"
            for p in (s.to_dict() for s in db.collection(f"users/{uid}/openPositions").stream())
        ]
        triggers = sum(1 for _ in db.collection(f"users/{uid}/tradeTriggers").stream())
        closed = sum(1 for s in db.collection(f"users/{uid}/tradeHistory").stream()
                     if s.get("status") == "closed")
        first, *rest = positions or ["-"]
        lines.append(f"{uid:<12}{user.get('balance', '-'):>18}  {first:<48}{triggers:>9}"
                     f"{closed:>8}")
        lines.extend(f"{'':<32}{more}" for more in rest)
    return "\n".join(lines)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true", help="seed, print once and exit")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between views")
    args = parser.parse_args()
    db = firestore_client()
    seed(db)
    print(snapshot(db), flush=True)
    while not args.once:
        time.sleep(args.every)
        print("\033[2J\033[H" + time.strftime("%H:%M:%S") + "  (Ctrl-C stops everything)\n"
              + snapshot(db), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
