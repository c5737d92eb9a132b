"""Prometheus metrics of the web services (the ingest service, the dashboard), and the queue's
health read from Redis at scrape time.

Under gunicorn each worker process counts on its own: with ``PROMETHEUS_MULTIPROC_DIR`` set
(``prepare_multiprocess_dir``, called by ``wa-analytics serve``/``dashboard`` before anything
imports prometheus_client) they write to files there, and ``/metrics`` adds them up.
"""

import logging
import os
import shutil
import threading
import time
from collections.abc import Iterable
from pathlib import Path

import redis

log = logging.getLogger(__name__)

MULTIPROC_ENV = "PROMETHEUS_MULTIPROC_DIR"
# A refusal's outcome is its reason class: a handful of values, whatever senders send.
OUTCOMES = {
    200: "accepted",
    400: "invalid_json",
    401: "bad_signature",
    405: "wrong_method",
    413: "too_large",
    415: "wrong_content_type",
    422: "unexpected_payload",
    500: "server_error",
    503: "queue_unavailable",
}
# Webhook answers take well under a millisecond; the dashboard's queries up to seconds.
LATENCY_BUCKETS = (0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10)


def prepare_multiprocess_dir(data_dir: Path, service: str) -> Path:
    """A fresh, empty directory for ``service``'s processes' metrics, set in the environment.

    Emptied on every start: files a previous run's processes left would be added to this one's.
    """
    path = Path(data_dir) / "prometheus" / service
    shutil.rmtree(path, ignore_errors=True)
    path.mkdir(parents=True)
    os.environ[MULTIPROC_ENV] = str(path)
    return path


def child_exit(server, worker) -> None:
    """gunicorn's ``child_exit`` hook: a dead worker's live gauges stop counting."""
    if os.environ.get(MULTIPROC_ENV):
        from prometheus_client import multiprocess  # noqa: PLC0415

        multiprocess.mark_process_dead(worker.pid)


class _Metrics:
    """The web services' series, built on first use: after ``prepare_multiprocess_dir``."""

    def __init__(self):
        from prometheus_client import Counter, Histogram  # noqa: PLC0415

        self.deliveries = Counter(
            "wa_deliveries",
            "Webhook deliveries answered at the door, by source and outcome (accepted, or why "
            "they were refused)",
            ["source", "outcome"],
        )
        self.request_seconds = Histogram(
            "wa_request_duration_seconds",
            "Time to answer a request, by service (webhook deliveries for the ingest service)",
            ["service"],
            buckets=LATENCY_BUCKETS,
        )
        self._children: dict = {}

    def delivery(self, source: str, status: int, seconds: float) -> None:
        # Label lookups cost more than the increment: each pair's children are found once.
        children = self._children.get((source, status))
        if children is None:
            outcome = OUTCOMES.get(status, str(status))
            children = self._children[(source, status)] = (
                self.deliveries.labels(source, outcome),
                self.request_seconds.labels("ingest"),
            )
        children[0].inc()
        children[1].observe(seconds)


_metrics: _Metrics | None = None
_metrics_lock = threading.Lock()
_record_failed = False  # logged once per process


def metrics() -> _Metrics:
    """The series, built once per process: a threaded worker's first requests race here, and a
    second registration of the same names would raise (prometheus_client's DuplicateTimeseries)."""
    global _metrics
    if _metrics is None:
        with _metrics_lock:
            if _metrics is None:
                _metrics = _Metrics()
    return _metrics


def record_delivery(source: str, status: int, seconds: float) -> None:
    """Count one delivery answered with ``status`` in ``seconds`` (the door's hot path).
    Never raises: a delivery already answered must not fail for its metrics."""
    global _record_failed
    try:
        metrics().delivery(source, status, seconds)
    except Exception:  # noqa: BLE001 - e.g. PROMETHEUS_MULTIPROC_DIR removed under the service
        if not _record_failed:
            _record_failed = True
            log.exception("counting deliveries failed; /metrics undercounts until a restart")


class QueueCollector:
    """The queue's health, read from Redis when Prometheus scrapes: deliveries waiting, the age
    of the oldest, dead letters, and drain jobs that failed for good."""

    def __init__(self, client: redis.Redis, queue_name: str):
        self.client = client
        self.queue_name = queue_name

    def collect(self) -> Iterable:
        from prometheus_client.core import GaugeMetricFamily  # noqa: PLC0415

        from wa_analytics.core.queueing import (  # noqa: PLC0415
            DEAD_LETTERS_KEY,
            Envelope,
            oldest_waiting,
            waiting,
        )

        up = GaugeMetricFamily("wa_queue_up", "1 if Redis answered this scrape, else 0")
        try:
            depth = waiting(self.client)
            oldest = oldest_waiting(self.client)
            letters = self.client.hlen(DEAD_LETTERS_KEY)
            failed = self.client.zcard(f"rq:failed:{self.queue_name}")
        except redis.RedisError:
            up.add_metric([], 0)
            yield up
            return
        age = max(0.0, time.time() - Envelope.decode(oldest).received_at) if oldest else 0.0
        up.add_metric([], 1)
        yield up
        yield GaugeMetricFamily(
            "wa_queue_waiting_deliveries", "Deliveries queued and not claimed by a drain", depth
        )
        yield GaugeMetricFamily(
            "wa_queue_oldest_delivery_age_seconds",
            "Age of the oldest delivery waiting for a drain (0 when none waits)",
            age,
        )
        yield GaugeMetricFamily(
            "wa_dead_letters",
            "Deliveries that could be stored neither as events nor quarantined "
            "(`wa-analytics failed`)",
            letters,
        )
        yield GaugeMetricFamily(
            "wa_drain_jobs_failed",
            "Drain jobs that failed for good, retries exhausted (`wa-analytics failed`)",
            failed,
        )


class _Forward:
    """The process's default registry, inside another registry (single-process mode)."""

    def collect(self) -> Iterable:
        from prometheus_client import REGISTRY  # noqa: PLC0415

        return REGISTRY.collect()


def build_registry(*collectors):
    """A registry with this service's own series (all gunicorn workers') and ``collectors``."""
    from prometheus_client import CollectorRegistry, multiprocess  # noqa: PLC0415

    registry = CollectorRegistry(auto_describe=False)
    if os.environ.get(MULTIPROC_ENV):
        multiprocess.MultiProcessCollector(registry)
    else:
        registry.register(_Forward())
    for collector in collectors:
        registry.register(collector)
    return registry


def exposition(registry) -> tuple[bytes, dict]:
    """The ``/metrics`` response body and headers, in Prometheus's text format."""
    from prometheus_client import CONTENT_TYPE_LATEST, generate_latest  # noqa: PLC0415

    return generate_latest(registry), {"Content-Type": CONTENT_TYPE_LATEST}
