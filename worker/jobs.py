"""RQ jobs. Plain module-level functions, enqueued by dotted path (``worker.jobs.<name>``)."""

import logging
import time
import uuid

import redis
from rq import get_current_job

from wa_analytics import database
from wa_analytics.config import load_settings
from wa_analytics.queueing import (
    BUFFER_KEY,
    DRAIN_FLAG,
    DRAIN_FLAG_TTL_SECONDS,
    LEASE_PREFIX,
    PROCESSING_PREFIX,
    Envelope,
    redis_client,
    schedule_drain,
)
from worker.phones import PhoneRules
from worker.processing import build_batch
from worker.store import write_batch

log = logging.getLogger(__name__)

# A job that died (SIGKILL, lost machine) stops renewing its lease; its claimed deliveries go back
# to the buffer once the lease expires. Renewed every batch, so it only needs to outlast one.
LEASE_SECONDS = 90
# A drain job hands over to a fresh job after this long, so it never meets RQ's job timeout.
MAX_JOB_SECONDS = 120

# Atomically move up to ARGV[1] deliveries from the buffer to this job's processing list and
# (re)take the lease: a crash at any point leaves every delivery in one of the two lists.
CLAIM = """
local items = redis.call('LRANGE', KEYS[1], 0, tonumber(ARGV[1]) - 1)
if #items > 0 then
    redis.call('LTRIM', KEYS[1], #items, -1)
    for i = 1, #items, 500 do
        redis.call('RPUSH', KEYS[2], unpack(items, i, math.min(i + 499, #items)))
    end
    redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
end
return items
"""
# Put a processing list back at the head of the buffer, in its original order.
GIVE_BACK = """
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do
    redis.call('LPUSH', KEYS[2], items[i])
end
redis.call('DEL', KEYS[1])
return #items
"""


def drain_deliveries() -> dict[str, int]:
    """Store everything queued, in batches of ``WA_BATCH_SIZE`` deliveries; one COPY per batch."""
    settings = load_settings()
    conn_redis = redis_client(settings.redis_url, timeout=30)
    job = get_current_job()
    owner = job.id if job else uuid.uuid4().hex
    processing, lease = PROCESSING_PREFIX + owner, LEASE_PREFIX + owner
    recover_orphans(conn_redis)
    claim = conn_redis.register_script(CLAIM)
    totals = {"deliveries": 0, "events": 0, "quarantine": 0, "batches": 0}
    started = time.monotonic()
    with database.connect(settings.database_url) as conn:
        while True:
            raw = claim(
                keys=[BUFFER_KEY, processing, lease], args=[settings.batch_size, LEASE_SECONDS]
            )
            if not raw:
                if _hand_back_flag(conn_redis):
                    continue
                break
            conn_redis.expire(DRAIN_FLAG, DRAIN_FLAG_TTL_SECONDS)
            try:
                batch = build_batch(
                    (Envelope.decode(item) for item in raw), PhoneRules.from_settings(settings)
                )
                added = write_batch(conn, batch)
            except Exception:
                give_back(conn_redis, processing)
                raise
            conn_redis.delete(processing, lease)
            totals["batches"] += 1
            for table, count in added.items():
                totals[table] += count
            if time.monotonic() - started > MAX_JOB_SECONDS:
                # Keep the flag: the fresh job is the one drain that is scheduled.
                schedule_drain(conn_redis, settings.queue_name)
                break
    log.info("drained %s", totals)
    return totals


def _hand_back_flag(conn_redis: redis.Redis) -> bool:
    """Release the drain flag; True if deliveries arrived meanwhile and this job took it again.

    A producer that pushed before the release saw the flag and scheduled nothing, so its delivery
    is found by the length check after the release; one that pushes after schedules its own job.
    """
    conn_redis.delete(DRAIN_FLAG)
    return bool(
        conn_redis.llen(BUFFER_KEY)
        and conn_redis.set(DRAIN_FLAG, "1", nx=True, ex=DRAIN_FLAG_TTL_SECONDS)
    )


def give_back(conn_redis: redis.Redis, processing_key: str) -> int:
    return conn_redis.register_script(GIVE_BACK)(keys=[processing_key, BUFFER_KEY])


def recover_orphans(conn_redis: redis.Redis) -> int:
    """Return deliveries claimed by jobs whose lease expired (the job died) to the buffer."""
    returned = 0
    for key in conn_redis.scan_iter(match=PROCESSING_PREFIX + "*", count=1000):
        owner = key.decode().removeprefix(PROCESSING_PREFIX)
        if not conn_redis.exists(LEASE_PREFIX + owner):
            returned += give_back(conn_redis, key.decode())
    if returned:
        log.warning("returned %d deliveries claimed by a job that died", returned)
    return returned
