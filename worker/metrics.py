"""The worker's Prometheus metrics, in a registry of its own."""

from __future__ import annotations

from prometheus_client import CollectorRegistry, Counter, Gauge, Histogram, generate_latest


class Metrics:
    """Counters, gauges and the tick → mark latency histogram."""

    def __init__(self) -> None:
        self.registry = CollectorRegistry()
        r = self.registry
        self.ticks = Counter("cogmora_ticks", "Ticks applied to the index", ["feed"], registry=r)
        self.frames_rejected = Counter(
            "cogmora_frames_rejected", "Frames dropped, by reason", ["feed", "reason"], registry=r)
        self.exchange_errors = Counter(
            "cogmora_exchange_errors", "Error frames from the exchange, by code",
            ["feed", "code"], registry=r)
        self.reconnects = Counter(
            "cogmora_reconnects", "Feed connections lost and retried", ["feed"], registry=r)
        self.token_requests = Counter(
            "cogmora_token_requests", "bullet-public requests, by outcome", ["feed", "outcome"],
            registry=r)
        self.subscribed = Gauge(
            "cogmora_subscribed_symbols", "Symbols subscribed", ["feed"], registry=r)
        self.marks = Counter(
            "cogmora_marks", "Marks written, by reason", ["reason"], registry=r)
        self.mark_outcomes = Counter(
            "cogmora_mark_outcomes", "Mark attempts, by outcome", ["outcome"], registry=r)
        self.mark_latency = Histogram(
            "cogmora_tick_to_mark_seconds", "From a tick's arrival to its mark committed",
            buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10), registry=r)
        self.invalid_documents = Counter(
            "cogmora_invalid_documents", "Watched documents that cannot be evaluated",
            ["collection", "reason"], registry=r)
        self.documents_read = Counter(
            "cogmora_documents_read", "Firestore documents read, by source", ["source"],
            registry=r)
        self.resyncs = Counter(
            "cogmora_resyncs", "Full re-reads of the watched documents, by cause", ["cause"],
            registry=r)
        self.subscription_changes = Counter(
            "cogmora_subscription_changes",
            "Symbols a feed was told to subscribe or unsubscribe, by symbol (one each time)",
            ["feed", "symbol", "op"], registry=r)
        self.subscription_messages = Counter(
            "cogmora_subscription_messages",
            "Control messages those changes cost at the venue (its declared limits)", ["feed"],
            registry=r)
        self.subscriptions_waiting = Gauge(
            "cogmora_subscriptions_waiting",
            "Wanted symbols not yet passed to the feed (held back by the venue's limits)",
            ["feed"], registry=r)
        self.lingering = Gauge(
            "cogmora_lingering_markets",
            "Markets kept subscribed only by the linger (nothing on them any more)", registry=r)
        self.armed = Gauge("cogmora_armed_documents", "Documents armed in the index", registry=r)

    def render(self) -> bytes:
        """Return the metrics in Prometheus text format."""
        return generate_latest(self.registry)
