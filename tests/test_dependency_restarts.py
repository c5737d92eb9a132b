"""Never stop on a dependency blip: workers, the transform and the dashboard run through a Redis
killed (SIGKILL) and a PostgreSQL shut down (immediate) under traffic, started again; every
acknowledged delivery is stored once and reaches the marts, with no process restarted.

Each test starts its own Redis and PostgreSQL (embedded, from the same wheels), which it kills;
the CLI's real processes run against them."""

import os
import signal
import subprocess
import threading
import time
import urllib.error
import urllib.request

import orjson
import psycopg
import pytest
import requests
from helpers import TEST_SECRETS, cloud_api_delivery, signed_post, text_message

from ingest_service import create_app
from wa_analytics.core import embedded, signing
from wa_analytics.core.config import load_settings
from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready

NOW = int(time.time()) - 60
STORED = "select count(*), count(distinct message_id) from raw.events"
IN_MARTS = "select coalesce(sum(messages_received), 0) from marts.hourly_traffic"
REDIS_DOWN = "redis unreachable; retrying with backoff"
REDIS_BACK = "redis reachable again after"
PG_DOWN = "postgresql unreachable; retrying with backoff"
PG_BACK = "postgresql reachable again after"


def delivery(number: int) -> bytes:
    wa_id = f"1631555{number % 10_000:04d}"
    return orjson.dumps(cloud_api_delivery([text_message(f"wamid.D{number}", wa_id, NOW)]))


class Sender(threading.Thread):
    """A sender posting signed deliveries to the door at a steady pace; remembers the 200s."""

    def __init__(self, base_url: str, rate: float = 40):
        super().__init__(daemon=True)
        self.url = f"{base_url}/webhooks/whatsapp"
        self.pause = 1 / rate
        self.acknowledged: set[int] = set()
        self.refused = 0
        self.stop = threading.Event()
        self.number = 0

    def run(self) -> None:
        session = requests.Session()
        secret = TEST_SECRETS["WHATSAPP_APP_SECRET"]
        while not self.stop.is_set():
            body = delivery(self.number)
            headers = {
                "Content-Type": "application/json",
                "X-Hub-Signature-256": signing.sign(body, secret),
            }
            try:
                status = session.post(self.url, data=body, headers=headers, timeout=5).status_code
            except requests.RequestException:
                status = None
            if status == 200:
                self.acknowledged.add(self.number)
            else:
                self.refused += 1
            self.number += 1
            time.sleep(self.pause)


class Servers:
    """A private Redis and PostgreSQL under ``folder`` that a test may kill and start again."""

    def __init__(self, folder, postgres: bool = True):
        self.folder = folder
        self.redis_url = embedded.ensure_redis(folder)
        self.database_url = embedded.ensure_postgres(folder) if postgres else None

    def kill_redis(self) -> None:
        os.kill(int((self.folder / "redis" / "redis.pid").read_text()), signal.SIGKILL)
        _wait_for(lambda: not embedded.redis_answers(self.redis_url), "Redis to die", 10)

    def start_redis(self) -> None:
        assert embedded.ensure_redis(self.folder) == self.redis_url

    def stop_postgres(self) -> None:
        """``pg_ctl stop -m immediate``: the postmaster's SIGQUIT, as in a crash."""
        postmaster = int((self.folder / "pg" / "postmaster.pid").read_text().split()[0])
        os.kill(postmaster, signal.SIGQUIT)
        _wait_for(lambda: not (self.folder / "pg" / "postmaster.pid").exists(), "PG to stop", 20)

    def start_postgres(self) -> None:
        assert embedded.ensure_postgres(self.folder) == self.database_url

    def column(self, table: str, column: str) -> list:
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            return [row[0] for row in conn.execute(f"select {column} from {table}")]

    def query(self, sql: str):
        with psycopg.connect(self.database_url, autocommit=True, connect_timeout=5) as conn:
            return conn.execute(sql).fetchone()


@pytest.fixture
def own_servers(servers, tmp_path, monkeypatch):
    """Private servers, in the environment of every process the test starts."""
    own = Servers(tmp_path / "own")
    monkeypatch.setenv("REDIS_URL", own.redis_url)
    monkeypatch.setenv("DATABASE_URL", own.database_url)
    for key in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        monkeypatch.delenv(key, raising=False)  # each process exports its own from the URL
    # Drains linger under traffic as by default (the kill meets a running drain); the dead
    # drain's claims come back after a short lease; the watchdog looks every 2 s.
    monkeypatch.setenv("WA_DRAIN_LINGER_SECONDS", "2")
    monkeypatch.setenv("WA_LEASE_SECONDS", "3")
    monkeypatch.setenv("WA_WATCHDOG_SECONDS", "2")
    monkeypatch.setenv("WA_TRANSFORM_INTERVAL", "2")
    yield own
    embedded.stop(own.folder)


def _wait_for(predicate, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not predicate():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def _start(command: list[str], log_path) -> subprocess.Popen:
    with open(log_path, "wb") as log_file:
        return spawn_cli(command, log_level="INFO", stdout=log_file, stderr=subprocess.STDOUT)


def _status(url: str) -> int:
    try:
        with urllib.request.urlopen(url, timeout=10) as response:
            return response.status
    except urllib.error.HTTPError as error:
        return error.code


def _stored(own: Servers) -> tuple[int, int]:
    try:
        return own.query(STORED)
    except psycopg.Error:  # down, or not migrated yet
        return (-1, -1)


@pytest.mark.slow
def test_workers_transform_and_dashboard_run_through_redis_and_postgres_restarts(
    own_servers, tmp_path
):
    """Under steady traffic, with two workers, the transform and the dashboard running: Redis
    SIGKILLed and started again, then PostgreSQL shut down (immediate) and started again.
    The same processes run throughout; every delivery acknowledged (before, during, after) is
    in raw.events exactly once and in the marts; each process logs each outage once."""
    own = own_servers
    port, dashboard_port = free_port(), free_port()
    logs = {name: tmp_path / f"{name}.log" for name in ("serve", "w1", "w2", "transform", "dash")}
    processes = {
        "serve": _start(["serve", "--port", str(port), "--workers", "2"], logs["serve"]),
        "w1": _start(["worker"], logs["w1"]),
        "w2": _start(["worker"], logs["w2"]),
        "transform": _start(["transform"], logs["transform"]),
        "dash": _start(
            ["dashboard", "--port", str(dashboard_port), "--workers", "1"], logs["dash"]
        ),
    }
    base = f"http://127.0.0.1:{port}"
    summary = f"http://127.0.0.1:{dashboard_port}/api/v1/metrics/summary"
    sender = Sender(base)
    try:
        wait_ready(base, processes["serve"])
        wait_ready(f"http://127.0.0.1:{dashboard_port}", processes["dash"], path="/healthz")
        _wait_for(lambda: "dbt build passed" in logs["transform"].read_text(), "a first build")
        sender.start()
        _wait_for(lambda: _stored(own)[0] >= 40, "deliveries stored before the faults")

        own.kill_redis()
        time.sleep(3)  # refused meanwhile (503): the sender retries them later, as Meta does
        own.start_redis()
        _wait_for(lambda: _stored(own)[0] >= len(sender.acknowledged), "storage after Redis")

        own.stop_postgres()
        time.sleep(1)
        assert _status(summary) == 503  # the dashboard says so, and keeps serving
        time.sleep(3)  # the door answers 200 meanwhile; the drains fail and are retried
        acknowledged_while_down = len(sender.acknowledged)
        own.start_postgres()
        time.sleep(2)
        sender.stop.set()
        sender.join(timeout=10)
        assert len(sender.acknowledged) > acknowledged_while_down

        wanted = len(sender.acknowledged)
        _wait_for(lambda: _stored(own)[0] >= wanted, "every acknowledged delivery stored", 60)
        total, distinct = _stored(own)
        assert total == distinct  # each once
        stored = {int(id.removeprefix("wamid.D")) for id in own.column("raw.events", "message_id")}
        assert sender.acknowledged <= stored
        # At most one per refusal: a delivery applied as its answer was lost (at-least-once).
        assert len(stored - sender.acknowledged) <= sender.refused
        _wait_for(lambda: own.query(IN_MARTS)[0] == total, "the marts to hold every event", 60)
        assert _status(summary) == 200

        for name, process in processes.items():
            assert process.poll() is None, f"{name} exited: {logs[name].read_text()[-3000:]}"
    finally:
        sender.stop.set()
        # The transform ends once its build in progress has (a minute on a loaded machine).
        stop_all(list(processes.values()), timeout=180)
    for name in ("w1", "w2", "transform"):
        assert processes[name].returncode == 0, logs[name].read_text()[-3000:]

    text = {name: path.read_text() for name, path in logs.items()}
    for name in ("w1", "w2"):
        # Each worker saw the Redis outage, once; RQ's retries are not logged one by one.
        assert text[name].count(REDIS_DOWN) == 1, text[name][-4000:]
        assert text[name].count(REDIS_BACK) == 1, text[name][-4000:]
        assert "could not connect to Redis" not in text[name]
        assert text[name].count(PG_DOWN) <= 1, text[name][-4000:]
        assert text[name].count(PG_DOWN) == text[name].count(PG_BACK), text[name][-4000:]
    assert text["w1"].count(PG_DOWN) + text["w2"].count(PG_DOWN) >= 1  # a drain failed on it
    # The transform says it once too: as the outage, or, if PostgreSQL was back before a build
    # that failed on it had ended, as that one failed build.
    transform = text["transform"]
    assert transform.count(PG_DOWN) == transform.count(PG_BACK) <= 1, transform[-4000:]
    assert transform.count(PG_DOWN) + transform.count("dbt build failed") == 1, transform[-4000:]


def _scrape(url: str) -> dict[str, float]:
    with urllib.request.urlopen(url, timeout=10) as response:
        return {
            line.rsplit(" ", 1)[0]: float(line.rsplit(" ", 1)[1])
            for line in response.read().decode().splitlines()
            if line and not line.startswith("#")
        }


def test_an_idle_worker_outlives_a_redis_outage_and_serves_the_next_traffic(
    servers, db, tmp_path, monkeypatch
):
    """No traffic while Redis is killed and down for seconds (RQ retries its connection several
    times meanwhile): the worker's /metrics still answers (the queue is down), the outage is
    logged once, and once Redis is back the same worker stores the next deliveries."""
    own = Servers(tmp_path / "own", postgres=False)
    monkeypatch.setenv("REDIS_URL", own.redis_url)
    client = create_app(load_settings()).test_client()
    metrics_port = free_port()
    log_path = tmp_path / "worker.log"
    worker = _start(["worker", "--metrics-port", str(metrics_port)], log_path)
    metrics_url = f"http://127.0.0.1:{metrics_port}/metrics"
    try:
        assert signed_post(client, "/webhooks/whatsapp", delivery(1)).status_code == 200
        _wait_for(lambda: db.execute(STORED).fetchone()[0] == 1, "the first delivery stored")
        own.kill_redis()
        _wait_for(lambda: REDIS_DOWN in log_path.read_text(), "the worker to notice")
        started = time.monotonic()
        assert _scrape(metrics_url)["wa_queue_up"] == 0
        assert time.monotonic() - started < 5  # within any scrape timeout
        time.sleep(8)  # RQ's own retries (1, 2, 4 s ...) happen meanwhile
        assert worker.poll() is None
        own.start_redis()
        _wait_for(lambda: REDIS_BACK in log_path.read_text(), "the worker to reconnect", 60)
        assert _scrape(metrics_url)["wa_queue_up"] == 1
        for number in range(2, 12):
            assert signed_post(client, "/webhooks/whatsapp", delivery(number)).status_code == 200
        _wait_for(lambda: db.execute(STORED).fetchone() == (11, 11), "the next deliveries")
        assert worker.poll() is None
    finally:
        stop_all([worker])
        embedded.stop(own.folder)
    assert worker.returncode == 0
    text = log_path.read_text()
    assert text.count(REDIS_DOWN) == 1 and text.count(REDIS_BACK) == 1, text[-4000:]
    assert "could not connect to Redis" not in text


@pytest.mark.slow
def test_the_transform_waits_for_postgres_and_outlives_its_restart(servers, tmp_path, monkeypatch):
    """Started while PostgreSQL is down, the transform waits for it (rather than exit); shut
    down immediately later, it logs the outage once, keeps retrying, and builds again once it
    is back: the same process throughout."""
    own = Servers(tmp_path / "own")
    own.query("select 1")
    monkeypatch.setenv("DATABASE_URL", own.database_url)
    monkeypatch.setenv("WA_TRANSFORM_INTERVAL", "1")
    for key in ("PGHOST", "PGPORT", "PGUSER", "PGPASSWORD", "PGDATABASE"):
        monkeypatch.delenv(key, raising=False)
    log_path = tmp_path / "transform.log"
    own.stop_postgres()
    transform = _start(["transform"], log_path)

    def log_text() -> str:
        return log_path.read_text()

    try:
        _wait_for(lambda: PG_DOWN in log_text(), "the transform to wait for PostgreSQL")
        time.sleep(2)
        assert transform.poll() is None
        own.start_postgres()
        _wait_for(lambda: "dbt build passed" in log_text(), "a first build", 180)
        assert log_text().count(PG_BACK) == 1

        own.stop_postgres()
        _wait_for(lambda: log_text().count(PG_DOWN) == 2, "the second outage")
        time.sleep(5)  # several attempts, each at most an interval apart
        own.start_postgres()
        _wait_for(lambda: log_text().count(PG_BACK) == 2, "the end of the second outage", 60)
        passed = log_text().count("dbt build passed")
        _wait_for(lambda: log_text().count("dbt build passed") > passed, "a build after it", 180)
        assert transform.poll() is None
    finally:
        stop_all([transform], timeout=180)  # after its build in progress
        embedded.stop(own.folder)
    assert transform.returncode == 0, log_text()[-3000:]
    assert log_text().count(PG_DOWN) == 2, log_text()[-3000:]  # once per outage


def test_a_worker_started_while_redis_is_down_waits_for_it(servers, db, tmp_path, monkeypatch):
    """Redis down as the worker starts (a host booting, compose starting both): the worker
    waits for it, logging that once, and works once it answers."""
    own = Servers(tmp_path / "own", postgres=False)
    monkeypatch.setenv("REDIS_URL", own.redis_url)
    client = create_app(load_settings()).test_client()
    own.kill_redis()
    log_path = tmp_path / "worker.log"
    worker = _start(["worker"], log_path)
    try:
        _wait_for(lambda: REDIS_DOWN in log_path.read_text(), "the worker to wait for Redis")
        time.sleep(3)
        assert worker.poll() is None
        own.start_redis()
        _wait_for(lambda: REDIS_BACK in log_path.read_text(), "the worker to connect", 60)
        for number in range(5):
            assert signed_post(client, "/webhooks/whatsapp", delivery(number)).status_code == 200
        _wait_for(lambda: db.execute(STORED).fetchone() == (5, 5), "the deliveries stored")
    finally:
        stop_all([worker])
        embedded.stop(own.folder)
    assert worker.returncode == 0
    assert log_path.read_text().count(REDIS_DOWN) == 1


def test_a_worker_waiting_for_redis_stops_on_sigterm(servers, tmp_path, monkeypatch):
    """A deploy (SIGTERM) while the worker waits for Redis ends it at once and cleanly."""
    own = Servers(tmp_path / "own", postgres=False)
    monkeypatch.setenv("REDIS_URL", own.redis_url)
    own.kill_redis()
    log_path = tmp_path / "worker.log"
    worker = _start(["worker"], log_path)
    try:
        _wait_for(lambda: REDIS_DOWN in log_path.read_text(), "the worker to wait for Redis")
        stopped = time.monotonic()
        worker.send_signal(signal.SIGTERM)
        assert worker.wait(timeout=15) == 0, log_path.read_text()[-3000:]
        assert time.monotonic() - stopped < 5
    finally:
        stop_all([worker])
        embedded.stop(own.folder)


def test_after_a_long_postgres_outage_storage_resumes_within_the_watchdog_period(
    servers, redis_conn, tmp_path, monkeypatch
):
    """PostgreSQL down for 20 s while deliveries wait: RQ's retries of the failed drains are
    1, 2, 5, 10, 30 s apart (later up to ten minutes), but the worker's watchdog looks for
    PostgreSQL every WA_WATCHDOG_SECONDS and schedules a drain once it answers."""
    own = Servers(tmp_path / "own")
    monkeypatch.setenv("DATABASE_URL", own.database_url)
    monkeypatch.setenv("WA_WATCHDOG_SECONDS", "1")
    client = create_app(load_settings()).test_client()
    log_path = tmp_path / "worker.log"
    worker = _start(["worker"], log_path)
    try:
        for number in range(10):
            assert signed_post(client, "/webhooks/whatsapp", delivery(number)).status_code == 200
        _wait_for(lambda: _stored(own) == (10, 10), "the first deliveries stored")
        own.stop_postgres()
        for number in range(10, 20):
            assert signed_post(client, "/webhooks/whatsapp", delivery(number)).status_code == 200
        _wait_for(lambda: PG_DOWN in log_path.read_text(), "a drain to fail on PostgreSQL")
        time.sleep(20)  # RQ's retries at 1, 3, 8 and 18 s fail; the next would be at 48 s
        own.start_postgres()
        back = time.monotonic()
        _wait_for(lambda: _stored(own) == (20, 20), "the rest stored", 60)
        assert time.monotonic() - back < 10
        assert worker.poll() is None
    finally:
        stop_all([worker])
        embedded.stop(own.folder)
    text = log_path.read_text()
    assert text.count(PG_DOWN) == 1 and text.count(PG_BACK) == 1, text[-4000:]
