"""The stages that read the marts: the metrics API's latency (``api``) and how soon a delivery
shows in it while the transform keeps the marts fresh (``freshness``). Both run on one database
of synthetic events (``stages.generate_history``) built once and shared."""

import json
import os
import threading
import time
import urllib.request
from dataclasses import dataclass, field
from datetime import date, timedelta
from pathlib import Path

import orjson
import psycopg

from wa_analytics.bench import loadgen
from wa_analytics.bench.stages import (
    BENCH_TARGET,
    HOST,
    Row,
    Service,
    generate_history,
    log,
    signed_requests,
    timed_dbt,
)
from wa_analytics.bench.workload import contact_number
from wa_analytics.core.config import Settings
from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready

API = "/api/v1"


@dataclass
class MartsDatabase:
    """The bench database with ``events`` synthetic events and its marts fully built, made on
    first use and kept for the stages after (the ``dbt`` stage, and any stage that resets the
    database, empties it)."""

    settings: Settings
    events: int
    built: bool = False

    def ensure(self) -> None:
        if self.built:
            return
        generate_history(self.settings, self.events)
        log(f"dbt run --full-refresh over {self.events:,} events")
        seconds = timed_dbt(["run", "--full-refresh", *BENCH_TARGET])
        log(f"  built in {seconds:.0f}s")
        self.built = True


class Dashboard:
    """``wa-analytics dashboard`` for the length of a measurement."""

    def __init__(self):
        self.port = free_port()
        self.process = spawn_cli(["dashboard", "--host", HOST, "--port", str(self.port)])
        self.base = f"http://{HOST}:{self.port}"

    def __enter__(self) -> "Dashboard":
        wait_ready(self.base, self.process, path="/healthz")
        return self

    def __exit__(self, *exc) -> None:
        stop_all([self.process])

    def get(self, path: str) -> dict:
        with urllib.request.urlopen(f"{self.base}{path}", timeout=60) as response:
            return json.loads(response.read())


# Requests timed per endpoint and filter, after the untimed ones.
API_REQUESTS, API_WARM_UP = 30, 3
API_ROW_SECONDS = 60
API_TARGET_MS = 200


def measure_api(database: MartsDatabase, requests: int = API_REQUESTS) -> list[Row]:
    """Each metrics endpoint (as the API's OpenAPI document lists them) over the last 28 and
    366 days, for every business number and for one: p95 of ``requests`` sequential requests
    after a warm-up, each timed from sending to the last byte."""
    database.ensure()
    rows = []
    with Dashboard() as dashboard:
        paths = sorted(
            path for path in dashboard.get(f"{API}/openapi.json")["paths"] if "/metrics/" in path
        )
        numbers = dashboard.get(f"{API}/metrics/business-numbers")["business_numbers"]
        number = numbers[0]["business_number"]
        end = date.fromisoformat(dashboard.get(f"{API}/metrics/summary")["end"])
        log(f"{len(paths)} endpoints, up to {end}, business number {number} of {len(numbers)};"
            f" {requests} requests each after {API_WARM_UP}")  # fmt: skip
        for days in (28, 366):
            for filtered in (False, True):
                query = f"?start={end - timedelta(days=days - 1)}&end={end}"
                query += f"&business_number={number}" if filtered else ""
                for path in paths:
                    if path.endswith("/business-numbers") and (days, filtered) != (28, False):
                        continue  # it takes no filters: once is enough
                    timings = _timed_gets(dashboard, f"{path}{query}", requests)
                    p95 = loadgen.percentile(timings, 0.95) * 1000
                    name = f"api: {path.removeprefix(f'{API}/metrics/')}, {days} days"
                    name += ", one number" if filtered else ""
                    log(f"{name}: p95 {p95:,.0f} ms of {len(timings)} requests")
                    rows.append(Row(f"{name}, p95", p95, "ms", None, "",
                                    f"<= {API_TARGET_MS} ms", p95 <= API_TARGET_MS))  # fmt: skip
    return rows


def _timed_gets(dashboard: Dashboard, path: str, requests: int) -> list[float]:
    """``requests`` timed GETs after ``API_WARM_UP`` untimed ones; an endpoint far slower than
    its target stops after ``API_ROW_SECONDS`` (and at least 5), so that it cannot hold up the
    bench for many minutes."""
    for _ in range(API_WARM_UP):
        started = time.perf_counter()
        dashboard.get(path)
        if time.perf_counter() - started > 2:
            break  # seconds a request: no cache to warm would bring it to the target
    timings: list[float] = []
    deadline = time.monotonic() + API_ROW_SECONDS
    while len(timings) < requests and (len(timings) < 5 or time.monotonic() < deadline):
        started = time.perf_counter()
        dashboard.get(path)
        timings.append(time.perf_counter() - started)
    return timings


# --- freshness ---------------------------------------------------------------------------

FRESHNESS_TARGET_S = 60
TRANSFORM_CPU_TARGET = 0.40
POLL_SECONDS = 0.5


def measure_freshness(database: MartsDatabase, rate: float, duration: float,
                      seed: int) -> list[Row]:  # fmt: skip
    """Steady signed traffic at ``rate`` for ``duration`` seconds into the marts database,
    with the ingest service, a worker, ``wa-analytics transform`` (its default interval) and
    the dashboard running; from each delivery's 200 to the first answer of the metrics API
    that counts it.

    Each delivery is a contact's message to a business number that names its second of the
    schedule (all of that second's deliveries, and only them, go to it). A watcher reads
    ``/metrics/business-numbers`` every half second; a delivery counts as shown when the
    answer first counts every acknowledged delivery of its second, at the time that answer
    arrived: never earlier than the truth, at most a second's deliveries later."""
    database.ensure()
    tag = str(seed % 10**6).zfill(6)
    count = max(20, int(rate * duration))
    numbers = [f"9{tag}{int(i / rate):05d}" for i in range(count)]
    bodies = [
        _inbound(numbers[i], contact_number(i), f"wamid.fresh.{tag}.{i}") for i in range(count)
    ]
    interval = float(os.environ.get("WA_TRANSFORM_INTERVAL", "30"))
    metrics_port = free_port()
    transform = spawn_cli(["transform", "--metrics-port", str(metrics_port)])
    try:
        with Service(workers=1) as service, Dashboard() as dashboard:
            _wait_for_first_build(metrics_port, transform, timeout=600)
            watcher = _CountWatcher(dashboard)
            watcher.start()
            builds_before = _build_seconds(metrics_port)
            cpu = _CpuMeter(transform.pid, _postmaster_pid(database.settings.database_url))
            log(f"open loop at {rate:,.0f}/s for {duration:.0f}s; transform every {interval:g}s")
            sent = loadgen.open_loop(HOST, service.port, signed_requests(service.port, bodies),
                                     rate)  # fmt: skip
            transform_cpu, postgres_cpu = cpu.shares()
            expected: dict[str, int] = {}
            for index, _ in sent.acknowledged:
                expected[numbers[index]] = expected.get(numbers[index], 0) + 1
            watcher.expect(expected)
            watcher.wait(timeout=3 * interval + 120)
            watcher.stop()
            builds = _build_seconds(metrics_port)
    finally:
        stop_all([transform])
    delays, missing = [], 0
    for index, acked in sent.acknowledged:
        shown = watcher.complete_at.get(numbers[index])
        if shown is None:
            missing += 1
        else:
            delays.append(shown - acked)
    refused = sum(n for status, n in sent.statuses.items() if status != 200)
    build_count = builds[1] - builds_before[1]
    build_mean = (builds[0] - builds_before[0]) / build_count if build_count else float("nan")
    p99 = loadgen.percentile(delays, 0.99)
    rows = [
        Row(f"freshness: 200 -> counted by the API, p99 at {rate:,.0f}/s", p99, "s", None, "",
            f"<= {FRESHNESS_TARGET_S} s, none missing",
            p99 <= FRESHNESS_TARGET_S and missing == 0 and refused == 0),
        Row("freshness: slowest", max(delays, default=float("nan")), "s"),
        Row("freshness: deliveries missing after the wait", missing, "", None, "", "0",
            missing == 0),
        Row("freshness: deliveries not answered 200", refused, "", None, "", "0", refused == 0),
        Row("freshness: transform CPU (of one core)", transform_cpu * 100, "%", None, "",
            f"<= {TRANSFORM_CPU_TARGET:.0%}", transform_cpu <= TRANSFORM_CPU_TARGET),
        Row("freshness: Postgres CPU meanwhile (of one core)", postgres_cpu * 100, "%"),
        Row(f"freshness: incremental build, mean of {build_count}", build_mean, "s", interval,
            "interval (s)"),
    ]  # fmt: skip
    return rows


def _inbound(number: str, wa_id: str, message_id: str) -> bytes:
    value = {
        "messaging_product": "whatsapp",
        "metadata": {"display_phone_number": number, "phone_number_id": number},
        "contacts": [{"profile": {"name": "Customer"}, "wa_id": wa_id}],
        "messages": [
            {"from": wa_id, "id": message_id, "timestamp": str(int(time.time())),
             "type": "text", "text": {"body": "Is my order on its way?"}},
        ],
    }  # fmt: skip
    change = {"field": "messages", "value": value}
    return orjson.dumps(
        {"object": "whatsapp_business_account", "entry": [{"id": "1029", "changes": [change]}]}
    )


class _CountWatcher(threading.Thread):
    """Reads the inbound messages per business number from the metrics API every
    ``POLL_SECONDS``; notes when each number's count first reaches what was acknowledged."""

    def __init__(self, dashboard: Dashboard):
        super().__init__(daemon=True)
        self.dashboard = dashboard
        self.answers: list[tuple[float, dict[str, int]]] = []
        self.expected: dict[str, int] | None = None
        self.complete_at: dict[str, float] = {}
        self.running = True
        self.lock = threading.Lock()

    def run(self) -> None:
        while self.running:
            answer = self.dashboard.get(f"{API}/metrics/business-numbers")["business_numbers"]
            counts = {row["business_number"]: row["messages_received"] for row in answer}
            with self.lock:
                self.answers.append((time.time(), counts))
                self._settle()
            time.sleep(POLL_SECONDS)

    def expect(self, expected: dict[str, int]) -> None:
        with self.lock:
            self.expected = expected
            self._settle()

    def _settle(self) -> None:
        """Each number's first answer (in the order they arrived) that counts all of it."""
        if self.expected is None:
            return
        for number, wanted in self.expected.items():
            if number in self.complete_at:
                continue
            for arrived, counts in self.answers:
                if counts.get(number, 0) >= wanted:
                    self.complete_at[number] = arrived
                    break
        self.answers = self.answers[-1:]  # earlier answers are settled

    def wait(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            with self.lock:
                if self.expected is not None and len(self.complete_at) == len(self.expected):
                    return
            time.sleep(0.2)

    def stop(self) -> None:
        self.running = False
        self.join()


@dataclass
class _CpuMeter:
    """CPU seconds of the transform process, and of Postgres (the postmaster, every backend
    alive, and those that exited meanwhile, which the postmaster's children's times hold)."""

    transform_pid: int
    postmaster_pid: int | None
    started: float = field(default_factory=time.monotonic)
    transform_start: float = 0.0
    postgres_start: float = 0.0

    def __post_init__(self) -> None:
        self.transform_start = _cpu_seconds(self.transform_pid)
        self.postgres_start = self._postgres()

    def _postgres(self) -> float:
        if self.postmaster_pid is None:
            return float("nan")
        children = Path(f"/proc/{self.postmaster_pid}/task/{self.postmaster_pid}/children")
        pids = [int(pid) for pid in children.read_text().split()]
        return _cpu_seconds(self.postmaster_pid, reaped=True) + sum(map(_cpu_seconds, pids))

    def shares(self) -> tuple[float, float]:
        """The transform's and Postgres's CPU since the start, as shares of one core."""
        elapsed = time.monotonic() - self.started
        transform = (_cpu_seconds(self.transform_pid) - self.transform_start) / elapsed
        return transform, (self._postgres() - self.postgres_start) / elapsed


def _cpu_seconds(pid: int, reaped: bool = False) -> float:
    """User and system CPU seconds of ``pid`` (with ``reaped``, also its waited-for children's);
    0 for a process that is gone."""
    try:
        fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    except OSError:
        return 0.0
    # After the command: state is field 3; utime, stime, cutime, cstime are fields 14-17.
    times = [int(value) for value in fields[11:15]]
    return sum(times if reaped else times[:2]) / os.sysconf("SC_CLK_TCK")


def _postmaster_pid(database_url: str) -> int | None:
    """The Postgres server's main process, if it runs on this machine as a process we may read."""
    with psycopg.connect(database_url) as conn:
        backend = conn.execute("select pg_backend_pid()").fetchone()[0]
        try:  # while the backend lives
            parent = int(Path(f"/proc/{backend}/stat").read_text().rsplit(")", 1)[1].split()[1])
            Path(f"/proc/{parent}/task/{parent}/children").read_text()
        except (OSError, ValueError):
            return None
    return parent


def _build_seconds(port: int) -> tuple[float, int]:
    """The transform's total build seconds and number of builds so far (its /metrics)."""
    total, count = 0.0, 0
    with urllib.request.urlopen(f"http://{HOST}:{port}/metrics", timeout=10) as response:
        for line in response.read().decode().splitlines():
            if line.startswith("wa_dbt_build_duration_seconds_sum"):
                total = float(line.split()[-1])
            elif line.startswith("wa_dbt_build_duration_seconds_count"):
                count = int(float(line.split()[-1]))
    return total, count


def _wait_for_first_build(port: int, transform, timeout: float) -> None:
    """Until the transform has finished a build (its first, after start-up, is the one that
    catches up after the full build)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if transform.poll() is not None:
            raise RuntimeError("wa-analytics transform exited; see its output")
        try:
            if _build_seconds(port)[1] >= 1:
                return
        except OSError:
            pass
        time.sleep(0.5)
    raise RuntimeError(f"wa-analytics transform finished no build in {timeout:.0f}s")
