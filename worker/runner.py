"""``wa-analytics worker``: an RQ worker on the ingest queue."""

import logging
import os
import signal
import threading
import time

import psycopg
import redis
from rq import SimpleWorker
from rq.exceptions import StopRequested
from rq.job_lifecycle import call_exception_handlers
from rq.registry import ScheduledJobRegistry, StartedJobRegistry

from wa_analytics.core import database, outages
from wa_analytics.core.config import Settings
from wa_analytics.core.queueing import (
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


# What a lost Redis raises: a refused, reset or timed-out connection, a server still loading.
REDIS_ERRORS = (redis.ConnectionError, redis.TimeoutError)


def run_worker(
    settings: Settings,
    burst: bool = False,
    log_level: str = "INFO",
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> bool:
    """Work the ingest queue; with ``burst``, until nothing is queued. True if any job ran.
    With ``metrics_port``, serve Prometheus's ``/metrics`` there (``worker.metrics``).

    Not in burst mode, the worker outlives Redis and PostgreSQL: a lost Redis (a restart, an
    outage of any length) ends RQ's loop, and this process waits for Redis with backoff and
    starts a new RQ worker, with the same threads; a drain that failed on either server is
    retried by RQ. Each outage is logged once when it starts and once when it ends
    (``wa_analytics.core.outages``). Only a stop request (SIGTERM, SIGINT) ends it.

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
    if burst:
        kick_if_pending(connection, settings.queue_name)
        return _drain_worker(connection, settings).work(burst=True, logging_level=log_level)
    for name in ("rq.worker", "rq.scheduler"):
        logging.getLogger(name).addFilter(RedisRetries())
    Watchdog(settings).start()
    worked = False
    quick_exits = 0
    worker = None
    try:
        while not jobs.STOPPING.is_set():
            _stop_on_signals()  # RQ's worker installs its own while it runs
            outages.retry(connection.ping, outages.REDIS, REDIS_ERRORS)
            started = time.monotonic()
            previous, worker = worker, _drain_worker(connection, settings)
            worked |= _work(worker, previous, connection, settings, log_level)
            if jobs.STOPPING.is_set():
                break
            # RQ's loop ended on an error it could not handle, logged by RQ (or, for a lost
            # Redis, as the outage): a new one starts once Redis answers, not in a tight loop.
            quick_exits = quick_exits + 1 if time.monotonic() - started < 60 else 0
            time.sleep(outages.backoff(quick_exits))
    except StopRequested:  # asked to stop between two RQ workers
        pass
    return worked


def _stop_on_signals() -> None:
    """SIGTERM or SIGINT between two RQ workers (waiting for Redis) stops the process cleanly.
    The last RQ worker's handlers would talk to Redis first, if it stopped mid-job."""

    def stop(signum, frame):
        jobs.stop_draining()
        raise StopRequested()

    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, stop)


def _work(
    worker: "DrainWorker",
    previous: "DrainWorker | None",
    connection: redis.Redis,
    settings: Settings,
    log_level: str,
) -> bool:
    """Run ``worker`` (after ``previous``, which lost Redis) until it is asked to stop or loses
    Redis. True if any job ran."""
    # Deliveries may wait with no job for them (a drain died with the connection, a crash).
    # Deliveries of a dead drain come back through their lease (WA_LEASE_SECONDS), not through
    # RQ; RQ's own registries are cleaned every minute, so a dead worker's abandoned drain job
    # is retried (harmlessly: a drain is idempotent) soon after its heartbeat lapses.
    try:
        if previous is not None:
            _release_scheduler_lock(previous)
        kick_if_pending(connection, settings.queue_name)
        return worker.work(with_scheduler=True, logging_level=log_level)
    except REDIS_ERRORS as error:  # raised as RQ tore the worker down (registering its death)
        outages.REDIS.failed(error)
        return False
    finally:
        worker.unsubscribe()  # if RQ lost Redis before it could


def _drain_worker(connection: redis.Redis, settings: Settings) -> "DrainWorker":
    return DrainWorker(
        [drain_queue(connection, settings.queue_name)],
        connection=connection,
        maintenance_interval=MAINTENANCE_SECONDS,
    )


def _release_scheduler_lock(worker: "DrainWorker") -> None:
    """RQ's scheduler (a child process, which moves drains due for a retry to the queue) died
    with the connection, its lock held: the next worker's would wait a minute for it to lapse,
    and drains retried after a PostgreSQL outage with it."""
    if worker.scheduler is not None:
        worker.scheduler.release_locks()  # only if still this scheduler's


class DrainWorker(SimpleWorker):
    """RQ's in-process worker, which also tells a running drain when it is asked to stop: a
    drain under steady traffic would otherwise go on for its whole job (MAX_JOB_SECONDS).
    A drain that failed because Redis or PostgreSQL is unreachable is part of that outage,
    logged once (``wa_analytics.core.outages``), not with a traceback for every retry."""

    # RQ retries a lost connection while it waits for jobs, waiting up to this long between tries.
    max_connection_wait_time = outages.MAX_BACKOFF_SECONDS

    def request_stop(self, signum, frame):
        jobs.stop_draining()
        super().request_stop(signum, frame)

    def unsubscribe(self):
        """End RQ's command thread without waiting for it. RQ stops it with redis-py's stop(),
        which waits for it to end; unsubscribed, it can sleep a minute before it looks again,
        and the worker's exit waited for it. Also when Redis is gone: the thread ends after its
        next retry instead of retrying for ever beside the next worker's."""
        thread, self.pubsub_thread = self.pubsub_thread, None
        if thread is None:
            return
        thread.stop(timeout=0)  # it ends when it next wakes up
        try:
            self.pubsub.unsubscribe()  # which wakes it
        except (redis.RedisError, OSError):
            pass
        thread.join(timeout=1)

    def heartbeat(self, timeout=None, pipeline=None):
        super().heartbeat(timeout, pipeline)
        if pipeline is None and outages.REDIS.ended():
            # Redis came back while RQ waited for jobs: whatever was drained as it went down
            # waits with no job for it.
            kick_if_pending(self.connection, self.queues[0].name)

    def handle_exception(self, job, *exc_info):
        outage = outage_behind(exc_info[1])
        if outage is None:
            super().handle_exception(job, *exc_info)
            return
        outage.failed(exc_info[1])
        call_exception_handlers(self._exc_handlers, job, *exc_info)


def outage_behind(error: BaseException | None) -> "outages.Outage | None":
    """The outage ``error`` (or an error it was raised from or while handling) comes from."""
    seen = 0
    while error is not None and seen < 10:
        if isinstance(error, REDIS_ERRORS):
            return outages.REDIS
        if isinstance(error, psycopg.OperationalError):
            return outages.POSTGRES
        error, seen = error.__cause__ or error.__context__, seen + 1
    return None


class RedisRetries(logging.Filter):
    """RQ logs each retry of a lost Redis connection (every few seconds of an outage, from the
    worker's loop, its command thread and its scheduler): they are counted in the outage,
    which is logged once, instead."""

    def filter(self, record: logging.LogRecord) -> bool:
        error = record.exc_info[1] if record.exc_info else None
        message = str(record.msg)
        if isinstance(error, REDIS_ERRORS):
            outages.REDIS.failed(error)
            return False
        if "could not connect to Redis" in message or "Redis connection timeout" in message:
            args = record.args if isinstance(record.args, tuple) else ()
            errors = [arg for arg in args if isinstance(arg, BaseException)]
            outages.REDIS.failed(errors[0] if errors else "RQ lost its connection")
            return False
        if record.name == "rq.scheduler" and "redis.exceptions.ConnectionError" in (
            record.getMessage()
        ):
            return False  # its process ends; the worker starts another once Redis answers
        return True


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
    until more traffic arrived or a worker restarted.

    While drains fail on PostgreSQL, it also looks for PostgreSQL every WA_WATCHDOG_SECONDS and
    schedules a drain as soon as it answers: RQ's next retry of the failed one may be up to
    ten minutes away after a long outage."""

    def __init__(self, settings: Settings):
        super().__init__(name="drain-watchdog", daemon=True)
        self.settings = settings
        self.connection = redis.Redis.from_url(settings.redis_url, socket_timeout=10)

    def run(self) -> None:
        while True:
            time.sleep(self.settings.watchdog_seconds)
            try:
                if self.database_is_back() and pending(self.connection):
                    # Beside the failed drain's retry: harmless, a drain is idempotent.
                    schedule_drain(self.connection, self.settings.queue_name)
                elif self.stranded():
                    log.warning("deliveries wait with no drain for them; scheduling one")
                    schedule_drain(self.connection, self.settings.queue_name)
            except REDIS_ERRORS as error:  # the worker's loop logs the outage's end
                outages.REDIS.failed(error)
            except Exception:  # noqa: BLE001 - the watchdog must outlive any one failure
                log.warning("drain watchdog check failed", exc_info=True)

    def database_is_back(self) -> bool:
        """True once PostgreSQL answers again after drains failed on it (the outage ends)."""
        if not outages.POSTGRES.ongoing:
            return False
        try:
            with database.connect(self.settings.database_url or "") as conn:
                conn.execute("select 1")
        except psycopg.OperationalError:
            return False
        return outages.POSTGRES.ended()

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
