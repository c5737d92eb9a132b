"""RQ jobs. Plain module-level functions, enqueued by dotted path (``worker.jobs.<name>``)."""

import itertools
import logging
import multiprocessing
import signal
import threading
import time
import uuid
from collections import Counter
from concurrent.futures import Future, ThreadPoolExecutor, wait
from multiprocessing.connection import Connection

import psycopg
import redis
from rq import get_current_job

from wa_analytics.core import database, outages
from wa_analytics.core.config import Settings, load_settings
from wa_analytics.core.queueing import (
    DRAIN_FLAG,
    DRAIN_FLAG_TTL_SECONDS,
    PROCESSING_PREFIX,
    acknowledge,
    claim_batch,
    give_back,
    hand_back_flag,
    queued,
    recover_orphans,
    redis_client,
    schedule_drain,
    waiting,
)
from worker import metrics
from worker.dead_letters import keep_dead_letters
from worker.phones import PhoneRules
from worker.processing import Batch, build_batch
from worker.store import held_stored_rows, write_isolating

log = logging.getLogger(__name__)

# A drain job hands over to a fresh job after this long, so it never meets RQ's job timeout.
MAX_JOB_SECONDS = 120
# How often a drain that caught up looks for more deliveries: the most a delivery waits for its
# claim then, and the pace of batches under steady traffic.
POLL_SECONDS = 0.05
# Set when this worker process is stopping (see stop_draining).
STOPPING = threading.Event()

# Helpers share the parent's loaded modules and settings; they use no inherited connection.
FORK = multiprocessing.get_context("fork")


def drain_deliveries() -> dict[str, int]:
    """Store everything queued (see ``_drain_deliveries``); a failure is counted, then raised
    for RQ to retry the job."""
    try:
        return _drain_deliveries()
    except Exception:
        metrics.DRAIN_FAILURES.inc()
        raise


def _drain_deliveries() -> dict[str, int]:
    """Store everything queued, in batches of ``WA_BATCH_SIZE`` deliveries; one COPY per batch.

    On a backlog (a campaign's burst of statuses) the job forks helpers, up to
    ``WA_DRAIN_PROCESSES`` in all, each claiming and storing batches on its own: parsing is
    Python and holds one core, so one process cannot keep Postgres and the other cores busy.
    Once caught up, the job waits ``WA_DRAIN_LINGER_SECONDS`` for more deliveries before it
    ends (see ``_await_deliveries``).
    """
    settings = load_settings()
    conn_redis = redis_client(settings.redis_url, timeout=30)
    job = get_current_job()
    owner = job.id if job else uuid.uuid4().hex
    recover_orphans(conn_redis)
    deadline = time.monotonic() + MAX_JOB_SECONDS
    totals = Counter(deliveries=0, events=0, quarantine=0, batches=0, helpers=0)
    with database.connect(settings.database_url) as conn:
        outages.POSTGRES.ended()  # logged if the drains before this one failed on it
        store = BatchWriter(conn)
        while True:
            helpers = _start_helpers(settings, conn_redis, owner, deadline)
            totals["helpers"] += len(helpers)
            try:
                totals.update(drain_batches(settings, conn_redis, store, owner, deadline))
            finally:
                totals.update(_join_helpers(helpers))
            if STOPPING.is_set():
                # What is left goes to a fresh job: another worker's, or this one's on restart.
                if hand_back_flag(conn_redis):
                    schedule_drain(conn_redis, settings.queue_name)
                break
            if time.monotonic() >= deadline:
                # Keep the flag: the fresh job is the one drain that is scheduled.
                schedule_drain(conn_redis, settings.queue_name)
                break
            if _await_deliveries(conn_redis, settings, deadline):
                continue
            if not hand_back_flag(conn_redis) and not _recover_dead_claims(
                conn_redis, settings, owner
            ):
                break
    log.info("drained %s", dict(totals))
    return dict(totals)


def stop_draining() -> None:
    """Called when this worker process is asked to stop (SIGTERM): a running drain finishes the
    batches in hand, claims no more and schedules a drain for what is left."""
    STOPPING.set()


def _await_deliveries(conn_redis: redis.Redis, settings: Settings, deadline: float) -> bool:
    """Hold the drain flag for up to ``WA_DRAIN_LINGER_SECONDS``, looking for deliveries every
    ``POLL_SECONDS``; True once some wait.

    Under steady traffic a drain catches up after every few deliveries. Ending the job there
    made the next delivery schedule another: an RQ job, a Redis and a Postgres connection and a
    commit for a handful of deliveries, about 1.3 ms of worker and Postgres CPU a delivery at
    500/s, enough to starve the ingest service of the cores it shares. The poll also sets the
    pace of batches: what arrives in one interval is claimed, parsed and committed together.
    """
    until = min(deadline, time.monotonic() + settings.drain_linger_seconds)
    while time.monotonic() < until and not STOPPING.is_set():
        time.sleep(POLL_SECONDS)
        conn_redis.expire(DRAIN_FLAG, DRAIN_FLAG_TTL_SECONDS)
        if queued(conn_redis):
            return True
    return False


def drain_batches(
    settings: Settings,
    conn_redis: redis.Redis,
    store: "BatchWriter",
    owner: str,
    deadline: float,
) -> Counter:
    """Claim, parse and store batches until the drain has caught up (a claim finds less than a
    batch), ``deadline`` passes or the worker is stopping.

    Two batches are in hand at once: while Postgres takes one in (a thread waits on its COPY
    and commit, the GIL released), the next is claimed and parsed. Each has its own claim
    (processing list and lease), acknowledged once its transaction has committed.
    """
    rules = PhoneRules.from_settings(settings)
    claims = [f"{owner}.{slot}" for slot in ("a", "b")]
    totals = Counter()
    writing: tuple[Future, str] | None = None  # the batch being written, and its claim
    with ThreadPoolExecutor(1) as writer:
        try:
            for holder in itertools.cycle(claims):
                if time.monotonic() >= deadline or STOPPING.is_set():
                    break
                raw = claim_batch(conn_redis, holder, settings.batch_size, settings.lease_seconds)
                if not raw:
                    break
                batch = build_batch(raw, rules)
                if writing:
                    totals.update(_acknowledge(conn_redis, *writing))
                writing = (writer.submit(store.write, batch), holder)
                if len(raw) < settings.batch_size:
                    break  # caught up: the caller waits for more, so that they come in batches
            if writing:
                totals.update(_acknowledge(conn_redis, *writing))
        except BaseException:
            if writing:
                wait([writing[0]])
                if writing[0].exception() is None:  # stored: no need to store it again
                    _acknowledge(conn_redis, *writing)
            for holder in claims:  # whatever is claimed and not acknowledged goes back
                give_back(conn_redis, PROCESSING_PREFIX + holder)
            raise
    return totals


def _acknowledge(conn_redis: redis.Redis, written: Future, holder: str) -> Counter:
    """Wait for a batch's transaction; once committed (and its dead letters kept), its claim
    is done with."""
    added, letters = written.result()
    keep_dead_letters(conn_redis, letters)
    acknowledge(conn_redis, holder)
    metrics.count_stored(added)  # in a helper, lost with it: counted by the parent from its totals
    return added + Counter(batches=1)


class BatchWriter:
    """Writes a drain's batches in order on one connection, prechecking after a batch that held
    rows stored before (a backlog of new traffic is COPYed straight away until one is refused).
    Rows the database refuses fail their own delivery alone (``store.write_isolating``)."""

    def __init__(self, conn: psycopg.Connection):
        self.conn = conn
        self.precheck = False

    def write(self, batch: Batch) -> tuple[Counter, list[tuple[bytes, str]]]:
        """The rows added, and the deliveries that could be stored neither way, with why."""
        added = write_isolating(self.conn, batch, self.precheck)
        self.precheck = held_stored_rows(batch, added)
        return added, batch.dead_letters


def _start_helpers(
    settings: Settings, conn_redis: redis.Redis, owner: str, deadline: float
) -> list[tuple[multiprocessing.Process, Connection]]:
    """Fork helper drains when the backlog is worth more than one process."""
    backlog = waiting(conn_redis)
    wanted = min(settings.drain_processes, backlog // settings.batch_size) - 1
    helpers = []
    for number in range(1, wanted + 1):
        receiver, sender = FORK.Pipe(duplex=False)
        process = FORK.Process(
            target=_helper_main,
            args=(settings, f"{owner}.{number}", deadline, sender),
            name=f"drain-helper-{number}",
            daemon=True,
        )
        process.start()
        sender.close()
        helpers.append((process, receiver))
    return helpers


def _helper_main(settings: Settings, owner: str, deadline: float, sender: Connection) -> None:
    # The worker's signal handlers came along with the fork; a helper just stops on SIGTERM.
    signal.signal(signal.SIGTERM, signal.SIG_DFL)
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    try:
        conn_redis = redis_client(settings.redis_url, timeout=30)
        with database.connect(settings.database_url) as conn:
            store = BatchWriter(conn)
            sender.send(("ok", drain_batches(settings, conn_redis, store, owner, deadline)))
    except Exception as exc:  # reported to the parent, which fails the job so RQ retries it
        sender.send(("error", f"{exc.__class__.__name__}: {exc}"))


def _join_helpers(helpers: list[tuple[multiprocessing.Process, Connection]]) -> Counter:
    totals, failures = Counter(), []
    for process, receiver in helpers:
        try:
            outcome, result = receiver.recv()
        except EOFError:  # died without a word (killed): its claim returns to the buffer
            outcome, result = "error", f"exit code {process.exitcode}"
        process.join()
        if outcome == "ok":
            totals.update(result)
            metrics.count_stored(result)
        else:
            failures.append(result)
    if failures:
        raise RuntimeError(f"drain helpers failed: {'; '.join(failures)}")
    return totals


def _recover_dead_claims(conn_redis: redis.Redis, settings: Settings, owner: str) -> bool:
    """Claims held by other drains may belong to one that died (SIGKILL, lost machine), with no
    later traffic to start a drain. Wait until their leases could have lapsed (a live drain's
    claims vanish or renew meanwhile) and take back the dead ones: True if any came back."""
    deadline = time.monotonic() + settings.lease_seconds + 1
    while time.monotonic() < deadline:
        others = [
            key
            for key in conn_redis.scan_iter(match=PROCESSING_PREFIX + "*", count=1000)
            if not key.decode().startswith(PROCESSING_PREFIX + owner)
        ]
        if not others:
            return False
        if recover_orphans(conn_redis):
            return True
        time.sleep(0.5)
    return False
