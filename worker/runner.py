"""``wa-analytics worker``: an RQ worker on the ingest queue."""

import logging
import os
import threading
import time

import redis
from rq import SimpleWorker
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from wa_analytics.config import Settings
from wa_analytics.queueing import (
    Envelope,
    drain_queue,
    oldest_waiting,
    pending,
    schedule_drain,
)
from worker import jobs
from worker.metrics import serve_metrics

log = logging.getLogger(__name__)

MAINTENANCE_SECONDS = 60


def run_worker(
    settings: Settings,
    burst: bool = False,
    log_level: str = "INFO",
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> bool:
    """Work the ingest queue; with ``burst``, until nothing is queued. True if any job ran.
    With ``metrics_port``, serve Prometheus's ``/metrics`` there (``worker.metrics``).

    SimpleWorker runs jobs in-process: each job drains thousands of deliveries, so a fork per job
    buys little isolation and costs latency on this queue's hot path.
    """
    if burst:
        # Done once the queue is empty: its drains end there too, not wait for more traffic.
        os.environ["WA_DRAIN_LINGER_SECONDS"] = "0"
    # No socket timeout here: the worker blocks on Redis while it waits for jobs.
    connection = redis.Redis.from_url(settings.redis_url)
    if metrics_port is not None:
        serve_metrics(metrics_port, settings.redis_url, settings.queue_name, metrics_host)
    kick_if_pending(connection, settings.queue_name)
    if not burst:
        Watchdog(settings).start()
    # Deliveries of a dead drain come back through their lease (WA_LEASE_SECONDS), not through
    # RQ; RQ's own registries are cleaned every minute, so a dead worker's abandoned drain job
    # is retried (harmlessly: a drain is idempotent) soon after its heartbeat lapses.
    worker = DrainWorker(
        [drain_queue(connection, settings.queue_name)],
        connection=connection,
        maintenance_interval=MAINTENANCE_SECONDS,
    )
    return worker.work(burst=burst, with_scheduler=not burst, logging_level=log_level)


class DrainWorker(SimpleWorker):
    """RQ's in-process worker, which also tells a running drain when it is asked to stop: a
    drain under steady traffic would otherwise go on for its whole job (MAX_JOB_SECONDS)."""

    def request_stop(self, signum, frame):
        jobs.stop_draining()
        super().request_stop(signum, frame)


def kick_if_pending(connection: redis.Redis, queue_name: str) -> None:
    """Schedule a drain when deliveries wait with no job queued for them (e.g. after a crash).
    A queued drain takes them all: a second one would only start, find nothing and stop."""
    if pending(connection) and drain_queue(connection, queue_name).count == 0:
        log.info("deliveries are waiting; scheduling a drain")
        schedule_drain(connection, queue_name)


class Watchdog(threading.Thread):
    """Schedules a drain when the oldest waiting delivery is older than WA_WATCHDOG_SECONDS and
    no drain is queued or running: the door queues a delivery and its drain job in two steps,
    and if the second failed (Redis lost mid-request), nothing else would pick the delivery up
    until more traffic arrived or a worker restarted."""

    def __init__(self, settings: Settings):
        super().__init__(name="drain-watchdog", daemon=True)
        self.settings = settings
        self.connection = redis.Redis.from_url(settings.redis_url, socket_timeout=10)

    def run(self) -> None:
        while True:
            time.sleep(self.settings.watchdog_seconds)
            try:
                if self.stranded():
                    log.warning("deliveries wait with no drain for them; scheduling one")
                    schedule_drain(self.connection, self.settings.queue_name)
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one failure
                log.warning("drain watchdog check failed", exc_info=True)

    def stranded(self) -> bool:
        oldest = oldest_waiting(self.connection)
        if oldest is None:
            return False
        age = time.time() - Envelope.decode(oldest).received_at
        if age < self.settings.watchdog_seconds:
            return False
        queue = drain_queue(self.connection, self.settings.queue_name)
        # A drain waiting for its retry (Postgres down) is scheduled, not queued or running:
        # another one would only fail beside it.
        return (
            queue.count == 0
            and StartedJobRegistry(queue=queue).count == 0
            and ScheduledJobRegistry(queue=queue).count == 0
        )
