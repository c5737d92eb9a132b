"""Faults of the real servers: Redis stopped and started again while deliveries arrive."""

import os
import signal
import time

import orjson
import redis
from helpers import TEST_SECRETS, cloud_api_delivery, run_worker, signed_post, text_message

from ingest_service import create_app
from wa_analytics import embedded
from wa_analytics.bench.workload import campaign
from wa_analytics.config import load_settings
from wa_analytics.processes import spawn_cli, stop_all
from wa_analytics.queueing import push_delivery

NOW = int(time.time())


def delivery(number: int) -> bytes:
    wa_id = f"1631555{number:04d}"
    return orjson.dumps(cloud_api_delivery([text_message(f"wamid.R{number}", wa_id, NOW)]))


def send_until_accepted(client, body: bytes, attempts: int = 5) -> int:
    """A sender's retries: returns how many attempts it took to get a 200."""
    for attempt in range(1, attempts + 1):
        if signed_post(client, "/webhooks/whatsapp", body).status_code == 200:
            return attempt
        time.sleep(0.1)
    raise AssertionError("never accepted")


def test_redis_outage_loses_and_duplicates_nothing(servers, db, tmp_path, monkeypatch):
    """While Redis is down every delivery gets a 503 within 1.5 s, never a 200. Redis comes back
    from its append-only file with what it had acknowledged; the sender retries what was
    refused; every delivery is stored exactly once."""
    folder = tmp_path / "own-redis"
    url = embedded.ensure_redis(folder)
    monkeypatch.setenv("REDIS_URL", url)
    settings = load_settings(
        {**TEST_SECRETS, "REDIS_URL": url, "DATABASE_URL": servers["database_url"]}
    )
    client = create_app(settings).test_client()
    try:
        for number in range(10):
            assert send_until_accepted(client, delivery(number)) == 1
        embedded.stop(folder)  # SIGTERM: Redis flushes its append-only file and exits
        deadline = time.monotonic() + 10
        while embedded.redis_answers(url):
            assert time.monotonic() < deadline
            time.sleep(0.05)
        slowest = 0.0
        for number in range(10, 20):
            started = time.monotonic()
            response = signed_post(client, "/webhooks/whatsapp", delivery(number))
            slowest = max(slowest, time.monotonic() - started)
            assert response.status_code == 503 and response.headers["Retry-After"]
        assert slowest < 1.5

        embedded.ensure_redis(folder)
        restored = redis.Redis.from_url(url)
        assert restored.llen("wa:deliveries") == 10  # the acknowledged ones survived the restart
        for number in range(10, 20):
            send_until_accepted(client, delivery(number))
        for number in range(5):  # and some duplicates, as senders also retry what succeeded
            send_until_accepted(client, delivery(number))
        run_worker(restored, settings)
    finally:
        embedded.stop(folder)
    stored = db.execute("select count(*), count(distinct message_id) from raw.events").fetchone()
    assert stored == (20, 20)
    assert db.execute("select count(*) from raw.deliveries").fetchone()[0] == 20


def test_a_worker_killed_mid_batch_loses_and_duplicates_nothing(
    servers, db, redis_conn, monkeypatch
):
    """SIGKILL a worker (and its drain helpers) in the middle of a backlog: once a worker runs
    again, every acknowledged event is in raw.events exactly once, with no traffic needed to
    trigger the recovery (the dead drain's claims come back when their lease lapses)."""
    monkeypatch.setenv("WA_LEASE_SECONDS", "3")
    monkeypatch.setenv("WA_BATCH_SIZE", "100")
    total = 20000
    for body in campaign(total, seed=31):
        push_delivery(redis_conn, load_settings().queue_name, "whatsapp", body)
    first = spawn_cli(["worker"], start_new_session=True)
    try:
        deadline = time.monotonic() + 60
        while count(db) < 300:
            assert time.monotonic() < deadline and first.poll() is None
            time.sleep(0.01)
    finally:
        os.killpg(first.pid, signal.SIGKILL)
        first.wait()
    assert count(db) < total  # killed in the middle
    second = spawn_cli(["worker"])
    try:
        deadline = time.monotonic() + 60
        while count(db) < total or list(redis_conn.scan_iter(match="wa:processing:*")):
            assert time.monotonic() < deadline, count(db)
            time.sleep(0.2)
    finally:
        stop_all([second])
    distinct = "select count(distinct (message_id, event_name, status)) from raw.events"
    assert db.execute(distinct).fetchone()[0] == count(db)
    assert count(db) == total


def count(db) -> int:
    return db.execute("select count(*) from raw.events").fetchone()[0]
