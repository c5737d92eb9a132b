"""``wa-analytics transform``: the marts kept fresh by an incremental ``dbt build`` on a schedule.

One process runs every build in-process through dbt's programmatic runner, so a build pays
neither Python's nor dbt's start-up. Not rq.cron: its scheduler only enqueues a job every
interval for some worker to run, so a warm dbt would need a worker in this process beside it,
and a build that overruns its interval would find the next ones queued behind it; a loop that
starts the next build an interval after the last one started is simpler and never overlaps.
Across processes and hosts, the build lock (wa_analytics/core/dbt.py) keeps one build at a time: a
round that finds another build running (an analyst's) skips to the next.
"""

import logging
import signal
import threading
import time

import psycopg
from prometheus_client import Counter, Gauge, Histogram, start_http_server

from wa_analytics.core import outages
from wa_analytics.core.config import Settings
from wa_analytics.core.database import connect
from wa_analytics.core.dbt import PROFILES_DIR, PROJECT_ROOT, build_lock

log = logging.getLogger(__name__)

# Served by `wa-analytics transform --metrics-port` (deploy/prometheus/alerts.yml: MartsStale).
BUILDS = Counter("wa_dbt_builds", "Scheduled dbt builds by outcome", ["outcome"])
BUILD_SECONDS = Histogram(
    "wa_dbt_build_duration_seconds",
    "How long a scheduled dbt build took",
    buckets=(1, 2, 5, 10, 20, 30, 60, 120, 300, 600, 1800),
)
MARTS_BUILT = Gauge("wa_marts_built_timestamp_seconds", "When the last passing build ended")
MARTS_AS_OF = Gauge(
    "wa_marts_as_of_timestamp_seconds",
    "The newest loaded_at in raw.events when the last passing build started: what the marts "
    "include (marts lag: time() minus this)",
)
MARTS_LAG = Gauge(
    "wa_marts_lag_seconds",
    "Now minus wa_marts_as_of_timestamp_seconds: how far behind raw.events the marts are "
    "(it grows in quiet hours too, when no event arrives: MartsStale watches the builds instead)",
)


def _marts_lag() -> float:
    return time.time() - _marts_as_of if _marts_as_of is not None else float("nan")


_marts_as_of: float | None = None  # what MARTS_AS_OF says, once a build has passed
MARTS_LAG.set_function(_marts_lag)

RECORDED_AS_OF = """
select extract(epoch from as_of) from audit.dbt_builds
where has_passed
order by finished_at desc
limit 1
"""

# The selector of the rounds between whole builds (selectors.yml); build_log.sql counts its builds
# as builds of the marts.
ROUND_SELECTOR = "scheduled_round"

# Retries of a failing build wait twice as long each time, up to this (or the interval).
MAX_BACKOFF_SECONDS = 300


class Transformer:
    """Runs ``dbt build`` (incremental) in this process, holding the build lock."""

    def __init__(self, settings: Settings, dbt_vars: str | None = None):
        from dbt.cli.main import dbtRunner  # noqa: PLC0415 - dbt's import is seconds long

        self.settings = settings
        self.last_failure: str | None = None
        self.runner = dbtRunner()
        self.args = [
            "build",
            "--quiet",
            "--project-dir",
            str(PROJECT_ROOT),
            "--profiles-dir",
            str(PROFILES_DIR),
        ]
        if dbt_vars:
            self.args += ["--vars", dbt_vars]
        self.last_full_build: float | None = None  # time.monotonic() of the last one passed

    def round_args(self) -> tuple[list[str], bool]:
        """This round's dbt arguments, and whether it builds the whole project. Most rounds
        build the selector ``scheduled_round`` (selectors.yml): every table, and no test (each
        reads its whole table, where a round changes a few thousand rows: most of a round's
        time on millions of them). The first round, one after any failure, and one every
        WA_FULL_BUILD_INTERVAL are whole, and run every test."""
        due = self.last_full_build is None or (
            time.monotonic() - self.last_full_build >= self.settings.full_build_interval_seconds
        )
        return (self.args if due else [*self.args, "--selector", ROUND_SELECTOR]), due

    def build_once(self) -> bool | None:
        """One build: True if it passed, False if it failed (logged with dbt's reason), None if
        another build held the lock (skipped)."""
        with build_lock(self.settings.database_url, wait=False) as held:
            outages.POSTGRES.ended()  # if down before: it answers again
            if not held:
                log.info("another dbt build is running; skipping this round")
                BUILDS.labels("skipped").inc()
                return None
            args, whole = self.round_args()
            started = time.monotonic()
            result = self.runner.invoke(args)
            elapsed = time.monotonic() - started
        BUILD_SECONDS.observe(elapsed)
        if result.success:
            self.last_failure = None
            if whole:
                self.last_full_build = started
            scope = "the whole project" if whole else f"selector {ROUND_SELECTOR}"
            log.info("dbt build passed in %.1fs (%s)", elapsed, scope)
            BUILDS.labels("passed").inc()
            MARTS_BUILT.set_to_current_time()
            as_of = self.recorded_as_of()
            if as_of is not None:
                _set_as_of(as_of)
            return True
        reason = failure_reason(result)
        if not self.database_answers():
            # PostgreSQL went away mid-build: part of that outage (logged once by the caller),
            # not a failed build to report with dbt's many connection errors.
            raise psycopg.OperationalError(f"the database went away during a build: {reason}")
        # The next round is whole: it re-creates the views too, should the failure be one an
        # analyst's partial build left (dbt drops the views that depend on one it replaces).
        self.last_full_build = None
        # A build that keeps failing for one reason (a broken model) says so once in a row.
        if reason != self.last_failure:
            log.warning("dbt build failed after %.1fs: %s", elapsed, reason)
        self.last_failure = reason
        BUILDS.labels("failed").inc()
        return False

    def database_answers(self) -> bool:
        try:
            with connect(self.settings.database_url or "", autocommit=True):
                return True
        except psycopg.OperationalError:
            return False

    def recorded_as_of(self) -> float | None:
        """The newest ``loaded_at`` the newest passed build read (Unix seconds), as dbt recorded
        it (audit.dbt_builds, build_log.sql): the ``as_of`` the metrics API answers with."""
        try:
            with connect(self.settings.database_url or "", autocommit=True) as conn:
                row = conn.execute(RECORDED_AS_OF).fetchone()
        except psycopg.Error:
            return None
        return float(row[0]) if row and row[0] is not None else None


def _set_as_of(as_of: float) -> None:
    global _marts_as_of
    _marts_as_of = as_of
    MARTS_AS_OF.set(as_of)


def failure_reason(result) -> str:
    """What dbt said went wrong: each failed node and its message, or the exception."""
    if result.exception is not None:
        return f"{type(result.exception).__name__}: {result.exception}"
    # One line each (dbt's messages span several); the first few say enough.
    failed = [
        f"{r.node.name}: {' '.join((r.message or '').split())}"
        for r in getattr(result.result, "results", [])
        if str(r.status) in ("error", "fail", "runtime error")
    ]
    if len(failed) > 3:
        failed = failed[:3] + [f"and {len(failed) - 3} more"]
    return "; ".join(failed) or "no node failed (see dbt's log, logs/dbt.log)"


def run_transform(
    settings: Settings,
    dbt_vars: str | None = None,
    stop: threading.Event | None = None,
    metrics_port: int | None = None,
    metrics_host: str = "127.0.0.1",
) -> None:
    """Build every ``settings.transform_interval_seconds`` until ``stop`` is set (or SIGTERM /
    SIGINT); a failed build is retried with backoff and never ends the schedule. With
    ``metrics_port``, Prometheus's /metrics is served there (builds, durations, freshness)."""
    stop = stop or _stop_on_signals()
    if metrics_port:
        start_http_server(metrics_port, addr=metrics_host)
    interval = settings.transform_interval_seconds
    transformer = Transformer(settings, dbt_vars)
    log.info("building the marts every %gs", interval)
    failures = 0
    while not stop.is_set():
        started = time.monotonic()
        try:
            passed = transformer.build_once()
        except psycopg.OperationalError as error:
            # The database is down or restarting: one outage, logged once however long it
            # lasts, and retried sooner than a failed build (at least every interval).
            outages.POSTGRES.failed(error)
            failures += 1
            stop.wait(min(interval, outages.backoff(failures - 1)))
            continue
        except Exception as error:  # noqa: BLE001 - any other reason: try again later
            log.warning("dbt build could not start: %s", error)
            passed = False
        if passed is False:
            failures += 1
            delay = min(interval * 2**failures, max(interval, MAX_BACKOFF_SECONDS))
            log.debug("build failed %d time(s) in a row; next attempt in %gs", failures, delay)
        else:
            if failures:
                log.info("dbt builds run again after %d failed attempt(s)", failures)
            failures = 0
            delay = max(0.0, interval - (time.monotonic() - started))
        stop.wait(delay)
    log.info("transform stopped")


def _stop_on_signals() -> threading.Event:
    stop = threading.Event()
    # A build in progress finishes first; the process then exits at once.
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stop.set())
    return stop
