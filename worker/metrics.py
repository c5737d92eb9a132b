"""The worker's Prometheus series, served by ``wa-analytics worker --metrics-port``.

Counted where a drain acknowledges a batch (its rows are committed): a drain's forked helpers
report their totals to it, which counts them when they join.
"""

from prometheus_client import REGISTRY, Counter, Gauge, start_http_server

from wa_analytics.core.metrics import QueueCollector
from wa_analytics.core.queueing import redis_client

EVENTS_STORED = Counter("wa_events_stored", "Events stored in raw.events")
QUARANTINED = Counter(
    "wa_quarantined_items",
    "Items stored in raw.quarantine (not usable events), by the class of their reason "
    "(worker.parsing.errors.REASON_CLASSES)",
    ["reason"],
)
DEAD_LETTERS_KEPT = Counter(
    "wa_dead_letters_kept", "Deliveries this worker could store neither way (kept in Redis)"
)
DRAIN_FAILURES = Counter(
    "wa_drain_failures", "Drain jobs that failed (their batches went back to the queue; RQ retries)"
)
WORKER_UP = Gauge("wa_worker_up", "1 while this worker process serves its metrics")


def count_stored(added) -> None:
    """Count what one batch (or a helper's batches) added: events, quarantined items, letters."""
    EVENTS_STORED.inc(added.get("events", 0))
    for key, n in added.items():
        if key.startswith("quarantine."):
            QUARANTINED.labels(key.removeprefix("quarantine.")).inc(n)
    DEAD_LETTERS_KEPT.inc(added.get("dead_letters", 0))


def serve_metrics(port: int, redis_url: str, queue_name: str, host: str = "127.0.0.1") -> None:
    """Serve ``/metrics`` on ``host:port`` from a thread: these counters and the queue's health."""
    # One try of at most 2 s: a scrape while Redis is down answers wa_queue_up 0 within
    # Prometheus's timeout, where retries with backoff would fail the whole scrape.
    REGISTRY.register(QueueCollector(redis_client(redis_url, timeout=2), queue_name))
    WORKER_UP.set(1)
    start_http_server(port, addr=host)
