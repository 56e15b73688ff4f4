"""End to end: levels armed and fired again and again on one symbol never unsubscribe it.

Emulators + local KuCoin + `python -m worker` + the functions. A spot trigger
is armed, fired by a tick and settled (it leaves nothing armed: a spot
position without levels is not watched), then armed again, round after round,
with calm ticks published between the rounds while nothing is armed. The
symbol is wanted throughout (held, then lingering): the exchange sees one
subscribe and no unsubscribe, every tick published reaches the worker's
connection and is delivered to it (delivered / published = 1), and a market
order written between rounds fills at once at the fresh price. Once the churn
stops, the symbol is unsubscribed after the linger, once.
"""

from __future__ import annotations

import time
from decimal import Decimal as D
from typing import Any

import pytest

from tests.support.builders import trigger_doc
from tests.support.emulator import balance_of, wait_for
from tests.support.processes import Exchange, WorkerProcess
from tests.support.system import execution_of, funded_user

SYMBOL = "CHN-USDT"
LINGER = 15
ROUNDS = 5


@pytest.fixture(scope="module")
def worker(exchange: Exchange) -> Any:
    process = WorkerProcess(exchange, "worker-churn",
                            SUBSCRIPTION_LINGER_SECONDS=str(LINGER))
    yield process
    assert process.stop() == 0


def symbol_messages(exchange: Exchange, kind: str) -> int:
    """Return the (un)subscribe messages the local exchange received for SYMBOL."""
    return sum(1 for message in exchange.spot.subscribe_messages
               if message.get("type") == kind
               and SYMBOL in str(message.get("topic", "")).partition(":")[2].split(","))


def test_churn_on_one_symbol_never_unsubscribes_it_and_loses_no_tick(
        db: Any, exchange: Exchange, worker: WorkerProcess) -> None:
    uid = funded_user(db, "churn")
    published: list[int] = []

    def publish(price: str) -> None:
        published.append(exchange.publish(SYMBOL, price, price, str(D(price) + D("0.02"))))

    def changes(op: str) -> float:
        # Prometheus renders the labels sorted by name.
        return worker.metric("cogmora_subscription_changes_total", feed="kucoin-spot", op=op,
                             symbol=SYMBOL)

    for round_ in range(ROUNDS):
        trigger = f"t{round_}"
        db.document(f"users/{uid}/tradeTriggers/{trigger}").set(trigger_doc(
            symbol=SYMBOL, symbolType="spot", action="buy", leverage=1, amount=100,
            targetPrice=100))
        wait_for(lambda t=trigger: worker.armed(f"users/{uid}/tradeTriggers/{t}"))
        if round_ == 0:
            wait_for(lambda: SYMBOL in exchange.spot.subscribed())
        publish("101")  # not crossed
        deadline = time.monotonic() + 20
        while execution_of(db, uid, trigger) is None:  # crossed until it is settled
            assert time.monotonic() < deadline, f"round {round_} did not fire"
            publish("99")
            time.sleep(0.05)
        assert not worker.armed(f"users/{uid}/tradeTriggers/{trigger}")
        for _ in range(5):  # nothing armed now: the symbol lingers, its ticks still flow
            publish("101")
            time.sleep(0.05)
        assert symbol_messages(exchange, "unsubscribe") == 0

    # Between rounds a market order finds a fresh price at once (the symbol never left).
    before = balance_of(db, uid)
    publish("102")
    time.sleep(0.2)
    db.document(f"users/{uid}/tradeTriggers/now").set(trigger_doc(
        symbol=SYMBOL, symbolType="spot", action="buy", leverage=1, amount=100,
        condition="market", targetPrice=None))
    execution = None
    deadline = time.monotonic() + 20
    while execution is None:
        assert time.monotonic() < deadline, "the market order did not fill"
        execution = execution_of(db, uid, "now")
        time.sleep(0.1)
    assert execution["executedPrice"] == 102.02  # the ask of the tick before it
    assert balance_of(db, uid) < before

    assert min(published) == 1, "a tick published while the symbol was wanted reached no one"
    wait_for(lambda: worker.metric("cogmora_ticks_total", feed="kucoin-spot-0")
             == len(published))
    assert worker.metric("cogmora_ticks_total", feed="kucoin-spot-0") == len(published)
    assert (symbol_messages(exchange, "subscribe"), symbol_messages(exchange, "unsubscribe")) \
        == (1, 0)
    assert (changes("subscribe"), changes("unsubscribe")) == (1, 0)

    # The churn is over: after the linger the symbol is unsubscribed, once.
    wait_for(lambda: SYMBOL not in exchange.spot.subscribed(), timeout=LINGER + 20)
    assert symbol_messages(exchange, "unsubscribe") == 1
    wait_for(lambda: changes("unsubscribe") == 1)
