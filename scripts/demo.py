"""The whole system on one machine: local KuCoin + worker + demo accounts, shown live.

Run through scripts/run-local.sh, which starts the emulators (Firestore,
Functions, Auth) first. This starts the local KuCoin replaying the recorded
SOLUSDTM day (with `--live`, the real KuCoin instead), starts the worker,
seeds the demo accounts the way the app and the worker would, and shows
prices, marks, settlements and balances until Ctrl-C.
"""

from __future__ import annotations

import argparse
import contextlib
import os
import subprocess
import sys
import time
from functools import partial
from pathlib import Path
from typing import Any

import httpx
from google.cloud import firestore

from tests.support.emulator import firestore_client, wait_for

ROOT = Path(__file__).resolve().parents[1]

SOL_LONG = {"symbol": "SOLUSDTM", "symbolType": "futures", "action": "long", "amount": 500,
            "leverage": 5, "condition": "below", "targetPrice": 140, "executedPrice": 140,
            "stopLoss": 137, "takeProfit": 141.5}
SOL_SHORT = {"symbol": "SOLUSDTM", "symbolType": "futures", "action": "short", "amount": 250,
             "leverage": 10, "condition": "above", "targetPrice": 140, "executedPrice": 140,
             "stopLoss": 141.8, "takeProfit": 135}
BTC_SPOT = {"symbol": "BTC-USDT", "symbolType": "spot", "action": "buy", "amount": 1000,
            "condition": "market", "executedPrice": 87956.1, "takeProfit": 88500,
            "stopLoss": 87400}
DEMO_POSITIONS = {"demo-alice": [SOL_LONG, SOL_SHORT], "demo-bob": [BTC_SPOT],
                  "demo-carol": [], "demo-dave": []}
DEMO_TRIGGERS = {
    "demo-carol": [
        {"symbol": "SOLUSDTM", "symbolType": "futures", "condition": "below",
         "targetPrice": 138, "action": "long", "amount": 300, "leverage": 3,
         "stopLoss": 135, "takeProfit": 141, "details": {"status": "active"}},
        {"symbol": "SOLUSDTM", "symbolType": "futures", "condition": "above",
         "targetPrice": 141.5, "action": "short", "amount": 200, "leverage": 5,
         "stopLoss": 142.5, "takeProfit": 136, "details": {"status": "active"}},
        {"symbol": "XBTUSDTM", "symbolType": "futures", "condition": "below",
         "targetPrice": 59800, "action": "long", "amount": 100, "leverage": 10,
         "details": {"status": "active"}},
    ],
    "demo-dave": [
        {"symbol": "ETH-USDT", "symbolType": "spot", "condition": "market", "action": "buy",
         "amount": 500, "details": {"status": "active"}},
    ],
}


def seed(db: Any) -> None:
    """Create the demo accounts, their positions and triggers (idempotent)."""
    for uid, executions in DEMO_POSITIONS.items():
        user = db.document(f"users/{uid}")
        if not user.get().exists:
            user.set({"displayName": uid.removeprefix("demo-").title(), "demo": True})
        wait_for(partial(_has_balance, user))
        for index, execution in enumerate(executions):
            ref = db.document(f"users/{uid}/executedTriggers/demo-{index}")
            if not ref.get().exists:
                ref.set({**execution, "triggerId": f"demo-{index}", "status": "pending",
                         "executedAt": firestore.SERVER_TIMESTAMP})
            wait_for(partial(_settled, ref))
        for index, trigger in enumerate(DEMO_TRIGGERS.get(uid, [])):
            trigger_ref = db.document(f"users/{uid}/tradeTriggers/demo-t{index}")
            executed = db.document(f"users/{uid}/executedTriggers/demo-t{index}")
            if not trigger_ref.get().exists and not executed.get().exists:
                trigger_ref.set(trigger)


def snapshot(db: Any, prices: dict[str, str] | None = None,
             worker_url: str | None = None) -> str:
    """Return a text view: prices, the worker's marks, and every demo account."""
    lines = []
    if prices:
        lines.append("prices   " + "   ".join(f"{s} {p}" for s, p in sorted(prices.items())))
    if worker_url:
        lines.append("worker   " + _worker_line(worker_url))
    lines.append(f"{'user':<12}{'balance':>16}  {'positions':<50}{'triggers':>9}{'closed':>7}")
    for uid in DEMO_POSITIONS:
        user = db.document(f"users/{uid}").get().to_dict() or {}
        positions = [
            f"{p.get('symbol')} {p.get('positionType')} x{p.get('leverage')} "
            f"@{p.get('averageEntryPrice')} [{(p.get('details') or {}).get('status')}]"
            for p in (s.to_dict() for s in db.collection(f"users/{uid}/openPositions").stream())
        ]
        triggers = sum(1 for _ in db.collection(f"users/{uid}/tradeTriggers").stream())
        closed = [s.to_dict() for s in db.collection(f"users/{uid}/tradeHistory").stream()
                  if s.get("status") == "closed"]
        first, *rest = positions or ["-"]
        lines.append(f"{uid:<12}{user.get('balance', '-'):>16}  {first:<50}{triggers:>9}"
                     f"{len(closed):>7}")
        lines.extend(f"{'':<30}{more}" for more in rest)
        lines.extend(f"{'':<30}closed {h['symbol']} {h['closeReason']} @{h['closePrice']} "
                     f"pnl {h['pnl']}" for h in closed)
    return "\n".join(lines)


def _worker_line(url: str) -> str:
    try:
        text = httpx.get(f"{url}/metrics", timeout=2).text
        health = httpx.get(f"{url}/healthz", timeout=2).json()
    except (httpx.HTTPError, ValueError):
        return "not answering"
    marks = sum(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith("cogmora_marks_total{"))
    ticks = sum(float(line.split()[-1]) for line in text.splitlines()
                if line.startswith("cogmora_ticks_total{"))
    return f"healthy={health.get('ok')}  ticks={ticks:.0f}  marks={marks:.0f}"


def start(args: list[str], env: dict[str, str], log_name: str) -> subprocess.Popen[bytes]:
    log = open(ROOT / ".cache" / log_name, "ab")  # noqa: SIM115
    return subprocess.Popen([sys.executable, *args], cwd=ROOT, env=env, stdout=log,
                            stderr=subprocess.STDOUT)


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--once", action="store_true",
                        help="start everything, show one view after a few seconds, stop")
    parser.add_argument("--every", type=float, default=2.0, help="seconds between views")
    parser.add_argument("--speed", type=float, default=10.0,
                        help="replay speed: recorded seconds per real second")
    parser.add_argument("--live", action="store_true", help="use the real KuCoin")
    parser.add_argument("--worker-port", type=int, default=8080)
    args = parser.parse_args()
    (ROOT / ".cache").mkdir(exist_ok=True)
    env = {**os.environ, "PORT": str(args.worker_port), "RESYNC_SECONDS": "60",
           "GOOGLE_CLOUD_PROJECT": os.environ.get("GCLOUD_PROJECT", "demo-cogmora")}
    children: list[subprocess.Popen[bytes]] = []
    control = None
    try:
        if not args.live:
            children.append(start(["-m", "localkucoin", "--speed", str(args.speed)], env,
                                  "localkucoin.log"))
            env["KUCOIN_SPOT_API"] = "http://127.0.0.1:9501"
            env["KUCOIN_FUTURES_API"] = "http://127.0.0.1:9502"
            env["BACKPACK_WS_URL"] = "ws://127.0.0.1:9503"
            env["BACKPACK_API"] = "http://127.0.0.1:9503"
            env["BINANCE_SPOT_WS"] = "ws://127.0.0.1:9504"
            env["BINANCE_SPOT_API"] = "http://127.0.0.1:9504"
            env["BINANCE_FUTURES_WS"] = "ws://127.0.0.1:9505"
            env["BINANCE_FUTURES_API"] = "http://127.0.0.1:9505"
            control = "http://127.0.0.1:9502/_control/state"
        children.append(start(["-m", "worker"], env, "worker.log"))
        worker_url = f"http://127.0.0.1:{args.worker_port}"
        db = firestore_client()
        seed(db)
        print("demo accounts seeded; logs in .cache/worker.log and .cache/localkucoin.log",
              flush=True)
        if args.once:
            time.sleep(5)
        while True:
            prices = _prices(control)
            view = snapshot(db, prices, worker_url)
            if args.once:
                print(view, flush=True)
                return 0
            print("\033[2J\033[H" + time.strftime("%H:%M:%S") +
                  "  (Ctrl-C stops everything)\n" + view, flush=True)
            time.sleep(args.every)
    except KeyboardInterrupt:
        return 0
    finally:
        for child in children:
            child.terminate()
        for child in children:
            with contextlib.suppress(subprocess.TimeoutExpired):
                child.wait(timeout=15)


def _prices(control: str | None) -> dict[str, str]:
    if control is None:
        return {}
    try:
        return dict(httpx.post(control, timeout=2).json().get("prices", {}))
    except (httpx.HTTPError, ValueError):
        return {}


if __name__ == "__main__":
    sys.exit(main())


def _has_balance(user: Any) -> bool:
    return "balance" in (user.get().to_dict() or {})


def _settled(ref: Any) -> bool:
    return bool(ref.get().get("status") != "pending")
