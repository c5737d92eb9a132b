"""The reliability soak: steady traffic at half capacity while the worker is stopped and started
again (SIGTERM, as a deploy does) and later killed with its helpers (SIGKILL, as a crash does).
It counts the acknowledged events never stored (must be 0) and the stored events no
acknowledged delivery carried (at most the deliveries refused: one applied as its answer was
lost). No event can be stored twice: raw.events' unique key refuses it, so the stored set is
compared with the acknowledged one instead."""

import os
import signal
import threading
import time

import orjson
import psycopg

from wa_analytics.bench import loadgen
from wa_analytics.bench.environment import reset
from wa_analytics.bench.stages import HOST, Row, Service, log, signed_requests
from wa_analytics.bench.workload import campaign
from wa_analytics.core.config import Settings
from wa_analytics.core.processes import spawn_cli, stop_all
from wa_analytics.core.queueing import pending, redis_client

STORED_KEYS = "select message_id, event_name, coalesce(status, '') from raw.events"


def measure_restarts(settings: Settings, rate: float, duration: float, seed: int) -> list[Row]:
    reset(settings)
    bodies = list(campaign(max(200, int(rate * duration)), seed=seed))
    keys = [event_key(body) for body in bodies]
    workers = [_start_worker()]
    stopping = threading.Event()
    restarts = threading.Thread(
        target=_restart_twice, args=(workers, duration, stopping), daemon=True
    )
    try:
        with Service() as service:
            restarts.start()
            log(f"open loop at {rate:,.0f}/s for {duration:.0f}s; the worker restarted twice")
            requests = signed_requests(service.port, bodies)
            sent = loadgen.open_loop(HOST, service.port, requests, rate)
            restarts.join()
            acknowledged = {keys[index] for index, _ in sent.acknowledged}
            # A killed drain's claims return when its lease lapses (WA_LEASE_SECONDS).
            timeout = settings.lease_seconds + 60
            rows = _wait_until_drained(settings, len(acknowledged), timeout)
    finally:
        stopping.set()
        if restarts.is_alive():
            restarts.join(timeout=60)
        stop_all(workers)
    reset(settings)
    stored = set(rows)
    lost = len(acknowledged - stored)
    extra = len(stored - acknowledged)
    refused = sum(n for status, n in sent.statuses.items() if status != 200)
    return [
        Row(f"restarts: deliveries acknowledged at {rate:,.0f}/s", len(acknowledged), ""),
        Row("restarts: deliveries not acknowledged (sender retries)", refused, ""),
        Row("restarts: acknowledged events lost", lost, "", None, "", "= 0", lost == 0),
        Row("restarts: events stored, not acknowledged", extra, "", None, "",
            "<= not acknowledged", extra <= refused),
    ]  # fmt: skip


def event_key(body: bytes) -> tuple[str, str, str]:
    """The dedup key of the one event a campaign delivery carries."""
    value = orjson.loads(body)["entry"][0]["changes"][0]["value"]
    if value.get("statuses"):
        item = value["statuses"][0]
        return item["id"], "status_updated", item["status"]
    return value["messages"][0]["id"], "message_received", ""


def _start_worker():
    # Its own process group, so that a SIGKILL reaches its drain helpers too.
    return spawn_cli(["worker"], start_new_session=True)


def _restart_twice(workers: list, duration: float, stopping: threading.Event) -> None:
    if stopping.wait(duration / 3):
        return
    log("worker stopped (SIGTERM) and started again")
    stop_all(workers[-1:])
    workers.append(_start_worker())
    if stopping.wait(duration / 3):
        return
    log("worker and its helpers killed (SIGKILL) and started again")
    os.killpg(workers[-1].pid, signal.SIGKILL)
    workers[-1].wait()
    workers.append(_start_worker())


def _wait_until_drained(settings: Settings, expected: int, timeout: float) -> list[tuple]:
    """The stored events' keys, once the queue is empty and ``expected`` are stored (or at
    ``timeout``: then what is missing counts as lost)."""
    conn_redis = redis_client(settings.redis_url, timeout=30)
    deadline = time.monotonic() + timeout
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        while True:
            rows = conn.execute(STORED_KEYS).fetchall()
            if (len(rows) >= expected and not pending(conn_redis)) or time.monotonic() > deadline:
                return rows
            time.sleep(0.5)
