"""Each measurement of the bench, beside its baseline measured in the same run."""

import os
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path

import orjson
import psycopg

from wa_analytics.bench import loadgen, synthetic
from wa_analytics.bench.environment import checkpoint, psql, reset
from wa_analytics.bench.workload import campaign
from wa_analytics.core import signing
from wa_analytics.core.config import Settings
from wa_analytics.core.dbt import run_dbt
from wa_analytics.core.processes import free_port, spawn_cli, stop_all, wait_ready
from wa_analytics.core.queueing import (
    Envelope,
    delivery_id_for,
    push,
    redis_client,
    schedule_drain,
)

HOST = "127.0.0.1"
WEBHOOK = "/webhooks/whatsapp"


@dataclass
class Row:
    """One line of the bench's table."""

    figure: str
    value: float
    unit: str
    baseline: float | None = None
    baseline_name: str = ""
    target: str = ""
    passed: bool | None = None

    @property
    def ratio(self) -> float | None:
        return self.value / self.baseline if self.baseline else None


def log(text: str) -> None:
    print(f"  {text}", flush=True)


class Service:
    """``wa-analytics serve`` (and optionally workers) for the length of a measurement."""

    def __init__(self, workers: int = 0):
        self.port = free_port()
        self.processes = [spawn_cli(["serve", "--host", HOST, "--port", str(self.port)])]
        self.processes += [spawn_cli(["worker"]) for _ in range(workers)]

    def __enter__(self) -> "Service":
        wait_ready(f"http://{HOST}:{self.port}", self.processes[0])
        return self

    def __exit__(self, *exc) -> None:
        stop_all(self.processes)

    def pids(self) -> dict[str, int]:
        names = ["ingest service"] + [f"worker {i}" for i in range(1, len(self.processes))]
        return {name: p.pid for name, p in zip(names, self.processes, strict=True)}


def signed_requests(port: int, bodies: list[bytes]) -> list[bytes]:
    secret = os.environ["WHATSAPP_APP_SECRET"]
    return [
        loadgen.http_request(
            HOST,
            port,
            "POST",
            WEBHOOK,
            body,
            {"Content-Type": "application/json", "X-Hub-Signature-256": signing.sign(body, secret)},
        )
        for body in bodies
    ]


def measure_ingest(settings: Settings, duration: float, seed: int) -> tuple[list[Row], float]:
    """Capacity for signed deliveries against ``GET /healthz`` on the same server, then the
    latency at half that rate. Returns the rows and the capacity (deliveries/s)."""
    with Service() as service:
        health = [loadgen.http_request(HOST, service.port, "GET", "/healthz")]
        bodies = list(campaign(max(2000, int(duration * 4000)), seed=seed))
        webhooks = signed_requests(service.port, bodies)
        loadgen.closed_loop(HOST, service.port, health, duration=min(2.0, duration))  # warm-up
        rounds = max(1, round(duration / 2))
        log(f"GET /healthz and POST {WEBHOOK} (signed), 16 connections, {duration:.0f}s each,"
            f" in {rounds} alternating slices of each")  # fmt: skip
        baseline, accepted = loadgen.alternating(
            HOST, service.port, health, webhooks, duration, rounds
        )
        refused = sum(n for status, n in accepted.statuses.items() if status != 200)
        reset(settings)
        half = accepted.rate / 2
        count = max(200, int(half * duration))
        log(f"open loop at {half:,.0f}/s (half the capacity), {count} deliveries")
        paced = loadgen.open_loop(HOST, service.port, signed_requests(service.port,
                                  list(campaign(count, seed=seed + 1))), rate=half)  # fmt: skip
        reset(settings)
    p99 = loadgen.percentile(paced.latencies, 0.99) * 1000
    rows = [
        Row(
            "ingest: signed deliveries accepted",
            accepted.rate,
            "/s",
            baseline.rate,
            "GET /healthz",
            ">= 0.60 x baseline",
            accepted.rate >= 0.6 * baseline.rate and refused == 0,
        ),  # fmt: skip
        Row(f"ingest: p99 latency at {half:,.0f}/s", p99, "ms", None, "", "<= 50 ms", p99 <= 50),
    ]
    return rows, accepted.rate


def queue_campaign(settings: Settings, events: int, seed: int) -> int:
    """Queue ``events`` events as the ingest service would, with a drain job scheduled."""
    conn_redis = redis_client(settings.redis_url, timeout=60)
    pipe = conn_redis.pipeline(transaction=False)
    queued = 0
    for body in campaign(events, seed=seed):
        envelope = Envelope(delivery_id_for("whatsapp", body), "whatsapp", time.time(), body)
        push(pipe, envelope, settings.batch_size)
        queued += 1
        if queued % 5000 == 0:
            pipe.execute()
    pipe.execute()  # the first push took the drain flag, as the door's would
    schedule_drain(conn_redis, settings.queue_name)
    return queued


# Timed rounds of the worker, and loads of its baseline: each figure is the best of its rounds,
# so that a moment of noise on a shared machine moves neither.
WORKER_ROUNDS = 2


def measure_worker(settings: Settings, events: int, seed: int) -> list[Row]:
    """``wa-analytics worker --burst`` over a queue of ``events`` events, against psql's
    ``\\copy`` of the same rows into an empty table with the same indexes; the best of
    ``WORKER_ROUNDS`` of each.

    An untimed round of the same size comes first. A cluster that never wrote this much WAL
    creates (and fills with zeros) a new WAL file every 16 MB of it; afterwards, checkpoints
    recycle those files. A new cluster's first burst measured 0.42 of the baseline, the next
    ones 0.51-0.54: the first figure is the cluster's installation, not the worker's steady
    state, and the baseline (run after the worker) would not pay it."""
    log(f"warm-up: an untimed round of {events:,} events")
    _timed_burst(settings, events, seed)
    rounds = []
    for number in range(1, WORKER_ROUNDS + 1):
        log(f"round {number}/{WORKER_ROUNDS}: queue {events:,} events (one status or message"
            " per delivery, as Meta sends them), then the worker")  # fmt: skip
        rounds.append(_timed_burst(settings, events, seed))
        log(f"  {events / rounds[-1]:,.0f} events/s")
    log("baseline: psql \\copy of the same rows into an empty copy of raw.events")
    baseline_seconds = copy_baseline(settings.database_url, WORKER_ROUNDS)
    reset(settings)
    rate, baseline = events / min(rounds), events / baseline_seconds
    return [
        Row(f"worker: events committed ({events:,})", rate, "/s", baseline, "psql \\copy",
            ">= 0.50 x baseline", rate >= 0.5 * baseline),
    ]  # fmt: skip


def _timed_burst(settings: Settings, events: int, seed: int) -> float:
    """Seconds ``wa-analytics worker --burst`` takes to store a fresh queue of the campaign."""
    reset(settings)
    queue_campaign(settings, events, seed)
    started = time.perf_counter()
    subprocess.run(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING", "worker", "--burst"],
        check=True,
    )
    elapsed = time.perf_counter() - started
    with psycopg.connect(settings.database_url) as conn:
        stored = conn.execute("select count(*) from raw.events").fetchone()[0]
    if stored != events:
        raise RuntimeError(f"the worker stored {stored} events of {events}")
    return elapsed


def copy_baseline(database_url: str, rounds: int = 1) -> float:
    """Seconds psql takes to load raw.events' rows into an empty table like it (the best of
    ``rounds``, each after a checkpoint: what came before is not the load's to flush)."""
    timings = []
    with tempfile.TemporaryDirectory() as folder:
        dump = Path(folder) / "events.copy"
        psql(f"\\copy raw.events to '{dump}'")
        for _ in range(rounds):
            psql(
                "drop table if exists raw.bench_events_copy",
                "create table raw.bench_events_copy (like raw.events including all)",
            )
            with psycopg.connect(database_url, autocommit=True) as conn:
                checkpoint(conn)
            started = time.perf_counter()
            psql(f"\\copy raw.bench_events_copy from '{dump}'")
            timings.append(time.perf_counter() - started)
        psql("drop table raw.bench_events_copy")
    return min(timings)


def measure_end_to_end(settings: Settings, rate: float, duration: float, seed: int) -> list[Row]:
    """From each 200 to its event being visible in raw.events, at a steady ``rate``."""
    reset(settings)
    count = max(100, int(rate * duration))
    bodies = list(campaign(count, seed=seed))
    message_ids = [_message_id(body) for body in bodies]
    with Service(workers=1) as service:
        watcher = _Watcher(settings.database_url, message_ids, rate)
        log(f"open loop at {rate:,.0f}/s for {duration:.0f}s with a worker running")
        watcher.start()
        sent = loadgen.open_loop(HOST, service.port, signed_requests(service.port, bodies), rate)
        watcher.wait_for(len({message_ids[i] for i, _ in sent.acknowledged}), timeout=60)
        watcher.stop()
    reset(settings)
    delays = [
        watcher.seen[message_ids[index]] - acked
        for index, acked in sent.acknowledged
        if message_ids[index] in watcher.seen
    ]
    missing = len(sent.acknowledged) - len(delays)
    p99 = loadgen.percentile(delays, 0.99)
    return [
        Row(f"end to end: 200 -> row visible, p99 at {rate:,.0f}/s", p99 * 1000, "ms", None, "",
            "<= 1000 ms, none lost", p99 <= 1.0 and missing == 0),
        Row("end to end: median", loadgen.percentile(delays, 0.5) * 1000, "ms"),
    ]  # fmt: skip


def _message_id(body: bytes) -> str:
    value = orjson.loads(body)["entry"][0]["changes"][0]["value"]
    return (value.get("statuses") or value.get("messages"))[0]["id"]


class _Watcher(threading.Thread):
    """Polls raw.events every 20 ms for the message ids sent so far and still unseen; notes
    when each appears. (Several statuses share a message id: the first one visible counts.)

    Only the ids already due on the open loop's schedule are asked for (a few hundred at a
    time): asking for every id of the run at each poll would cost Postgres more than the
    pipeline it measures, on the same two cores."""

    def __init__(self, database_url: str, message_ids: list[str], rate: float):
        super().__init__(daemon=True)
        self.database_url, self.message_ids, self.rate = database_url, message_ids, rate
        self.pending, self.seen = set(message_ids), {}
        self.running = True

    def run(self) -> None:
        started, scheduled, outstanding = time.monotonic(), 0, set()
        with psycopg.connect(self.database_url, autocommit=True) as conn:
            # The table grows from empty during the run and nothing analyzes it meanwhile: by
            # its stale statistics the planner scans it whole at every poll (4 ms and a fifth
            # of a core at 30,000 rows), where the ids' index answers in a fraction of that.
            conn.execute("set enable_seqscan = off")
            while self.running and self.pending:
                # Due by now, with a second's margin for a load generator that runs early.
                due = min(len(self.message_ids), int((time.monotonic() - started + 1) * self.rate))
                outstanding.update(m for m in self.message_ids[scheduled:due] if m not in self.seen)
                scheduled = due
                rows = conn.execute(
                    "select distinct message_id from raw.events where message_id = any(%s)",
                    [list(outstanding)],
                ).fetchall()
                now = time.time()
                for (message_id,) in rows:
                    self.seen[message_id] = now
                    self.pending.discard(message_id)
                    outstanding.discard(message_id)
                time.sleep(0.02)

    def wait_for(self, count: int, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while len(self.seen) < count and time.monotonic() < deadline:
            time.sleep(0.1)

    def stop(self) -> None:
        self.running = False
        self.join()


def measure_dbt(settings: Settings, events: int) -> list[Row]:
    """A full build over ``events`` events, then an incremental build after 1% more."""
    history = generate_history(settings, events)
    log("dbt run --full-refresh")
    full = timed_dbt(["run", "--full-refresh", *BENCH_TARGET])
    new = max(5, events // 100)
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        history.insert(conn, events, new, datetime.now(UTC))
        conn.execute("analyze raw.events")
    log(f"dbt run (incremental) after {new:,} new events")
    incremental = timed_dbt(["run", *BENCH_TARGET])
    reset(settings)
    return [
        Row(f"dbt: full build ({events:,} events)", events / full, "events/s"),
        Row("dbt: incremental build after +1%", incremental, "s", full, "full build (s)",
            "<= 0.10 x baseline", incremental <= 0.1 * full),
    ]  # fmt: skip


BENCH_TARGET = ["--target-path", "target/bench"]


def generate_history(settings: Settings, events: int) -> synthetic.History:
    """Empty the bench's tables, fill ``raw.events`` with ``events`` synthetic events (one
    contact for every 20 events, over 90 days) and load dbt's seeds."""
    reset(settings)
    history = synthetic.History.for_events(events, datetime.now(UTC))
    chunk = 1_000_000
    with psycopg.connect(settings.database_url, autocommit=True) as conn:
        for first in range(0, events, chunk):
            # Loaded as they happened: the last hours of them fall in the build's lookback.
            history.insert(conn, first, min(chunk, events - first))
            log(f"generated {min(first + chunk, events):,} of {events:,} events")
        conn.execute("vacuum analyze raw.events")
    run_dbt(["seed", "--quiet", *BENCH_TARGET])
    return history


def timed_dbt(args: list[str]) -> float:
    """Seconds ``dbt <args>`` takes (quiet)."""
    started = time.perf_counter()
    run_dbt([*args, "--quiet"])
    return time.perf_counter() - started


def measure_memory(settings: Settings, rate: float, duration: float, seed: int) -> list[Row]:
    """Resident memory of the service and a worker under steady load: after a warm-up of a
    fifth of ``duration``, every sample within 10% of the first."""
    reset(settings)
    samples: dict[str, list[int]] = {}
    with Service(workers=1) as service:
        pids = service.pids()
        warm_up = duration / 5
        started = time.monotonic()
        chunk = 0
        while time.monotonic() - started < duration:
            bodies = list(campaign(max(50, int(rate * 5)), seed=seed * 1000 + chunk))
            loadgen.open_loop(HOST, service.port, signed_requests(service.port, bodies), rate)
            chunk += 1
            if time.monotonic() - started >= warm_up:
                for name, pid in pids.items():
                    samples.setdefault(name, []).append(tree_rss(pid))
        log(f"{chunk} rounds of 5 s at {rate:,.0f}/s")
    reset(settings)
    rows = []
    for name, values in samples.items():
        drift = max(abs(v - values[0]) for v in values) / values[0]
        first_mib = values[0] / 2**20
        rows.append(Row(f"memory: {name} RSS drift over {duration:.0f}s", drift * 100, "%",
                        first_mib, "MiB after warm-up", "<= 10 %", drift <= 0.10))  # fmt: skip
    return rows


def tree_rss(pid: int) -> int:
    """Resident bytes of ``pid`` and all its descendants (Linux /proc)."""
    total, pending = 0, [pid]
    while pending:
        current = pending.pop()
        try:
            status = Path(f"/proc/{current}/status").read_text()
            children = Path(f"/proc/{current}/task/{current}/children").read_text().split()
        except OSError:
            continue
        for line in status.splitlines():
            if line.startswith("VmRSS:"):
                total += int(line.split()[1]) * 1024
        pending += [int(child) for child in children]
    return total
