"""The delivery buffer in Redis, shared by the ingest service (producer) and the worker (consumer).

A webhook delivery is appended to one Redis list (one RPUSH: cheap, so the service answers fast).
An RQ job, ``worker.jobs.drain_deliveries``, drains that list in batches of many deliveries, so
one job (and one COPY) serves thousands of webhooks. When a push fills the list to a batch
(``WA_BATCH_SIZE``), the list is sealed: renamed to a segment whose name is queued on
``SEALED_KEY``. A drain claims a sealed segment whole with one RENAME; moving a backlog's
deliveries one by one into a claim cost Redis more CPU than all the rest of a drain's commands.
At most one drain job is pending per ``DRAIN_FLAG``; the producer enqueues one only when the
flag is not set, which keeps RQ's per-job cost off the hot path. The consumer's side is here too
(``claim_batch``, ``give_back``, ``hand_back_flag``): the whole protocol in one module.
"""

import logging
import os
import threading
import time
import uuid
from typing import NamedTuple

import orjson
import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.exceptions import NoScriptError
from redis.retry import Retry
from rq import Queue
from rq import Retry as JobRetry

log = logging.getLogger(__name__)

BUFFER_KEY = "wa:deliveries"
DRAIN_FLAG = "wa:drain:scheduled"
PROCESSING_PREFIX = "wa:processing:"
SEALED_KEY = "wa:sealed"  # names of sealed segments, oldest first
SEGMENT_PREFIX = "wa:segment:"
SEGMENT_COUNTER = "wa:sealed:count"
LEASE_PREFIX = "wa:lease:"
# Deliveries that could be stored neither as events nor quarantined (worker/dead_letters.py).
DEAD_LETTERS_KEY = "wa:dead-letters"
DRAIN_JOB = "worker.jobs.drain_deliveries"
# A drain job that died leaves the flag behind; it expires so the next delivery schedules anew.
DRAIN_FLAG_TTL_SECONDS = 60
# Backoff for a drain job whose batch failed (Postgres down): about 25 minutes in all.
JOB_RETRY = JobRetry(max=10, interval=[1, 2, 5, 10, 30, 60, 120, 300, 300, 600])
# Append a delivery, seal the list when this delivery fills it to a batch, and take the drain
# flag if it is free, in one command and one reply (the hot path of every webhook). Returns OK
# when this delivery took the flag. Sealing only at exactly a batch keeps segments batch-sized:
# a list that holds more (a batch given back, a backlog from before sealing) is drained as it is.
PUSH = Script(
    None,
    b"""
if redis.call('RPUSH', KEYS[1], ARGV[1]) == tonumber(ARGV[3]) then
    local segment
    repeat  -- never over a segment still queued (the counter could have been reset by hand)
        segment = ARGV[4] .. redis.call('INCR', KEYS[4])
    until redis.call('RENAMENX', KEYS[1], segment) == 1
    redis.call('RPUSH', KEYS[3], segment)
end
return redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2])
""",
)
PUSH_KEYS = (BUFFER_KEY, DRAIN_FLAG, SEALED_KEY, SEGMENT_COUNTER)


def redis_client(
    url: str, timeout: float = 0.5, connect_timeout: float | None = None
) -> redis.Redis:
    """A client that fails when Redis is unreachable (within ``connect_timeout``, default
    ``timeout``) or does not answer within ``timeout``, instead of retrying."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=connect_timeout or timeout,
        retry=Retry(NoBackoff(), 0),
        health_check_interval=30,
    )


class Envelope(NamedTuple):
    """One accepted delivery: who sent it, when it arrived, and its body byte for byte.

    A named tuple: the worker decodes one per delivery, and a frozen dataclass costs twice as
    much to build."""

    delivery_id: str
    source: str
    received_at: float
    body: bytes

    def encode(self) -> bytes:
        header = orjson.dumps(
            {"id": self.delivery_id, "source": self.source, "received_at": self.received_at}
        )
        return header + b"\n" + self.body

    @classmethod
    def decode(cls, data: bytes) -> "Envelope":
        header, _, body = data.partition(b"\n")
        meta = orjson.loads(header)
        return cls(meta["id"], meta["source"], meta["received_at"], body)


def delivery_id_for(source: str, body: bytes) -> str:
    """The same body from the same source always gets the same id, so a retried delivery is
    stored once."""
    import hashlib  # noqa: PLC0415 - keeps the module's import list to what callers need

    digest = hashlib.sha256(source.encode() + b"\0" + body).digest()
    return str(uuid.UUID(bytes=digest[:16], version=4))


def drain_queue(connection: redis.Redis, queue_name: str) -> Queue:
    return Queue(queue_name, connection=connection)


class DeliveryQueue:
    """The producer's side: ``put`` queues one delivery, as the ingest service does for each.

    A push goes over one connection per process and thread, straight to its socket: redis-py's
    pool, retry and instrumentation layers around a command cost more CPU than the rest of a
    push (measured in BENCHMARKS.md). A connection made before a fork is not reused after it.
    """

    def __init__(self, client: redis.Redis, queue_name: str, batch_size: int):
        self.client = client
        self.queue_name = queue_name
        self.batch_size = batch_size
        self._local = threading.local()

    def put(self, source: str, body: bytes) -> str:
        """Queue one delivery; returns its id. Raises ``redis.RedisError`` if it was not queued."""
        envelope = Envelope(delivery_id_for(source, body), source, time.time(), body)
        if self._push(envelope) is not None:
            schedule_drain(self.client, self.queue_name)
        return envelope.delivery_id

    def _push(self, envelope: Envelope):
        connection = self._connection()
        args = _push_args(envelope, self.batch_size)
        try:
            _make_ready(connection)
            connection.send_command("EVALSHA", PUSH.sha, len(PUSH_KEYS), *PUSH_KEYS, *args)
            return connection.read_response()
        except NoScriptError:  # Redis restarted or its scripts flushed: load and run it
            return push(self.client, envelope, self.batch_size)
        except BaseException:
            # A reply may still be on its way: never read it as the next command's.
            connection.disconnect()
            raise

    def _connection(self) -> redis.Connection:
        local = self._local
        if getattr(local, "pid", None) != os.getpid():
            pool = self.client.connection_pool  # its settings; the connection stays outside it
            local.connection = pool.connection_class(**pool.connection_kwargs)
            local.pid = os.getpid()
        return local.connection


def _make_ready(connection: redis.Connection) -> None:
    """Connected, with nothing waiting to be read. A socket that Redis closed (a restart) reads
    as the end of the stream: it is replaced here, so the next delivery is not refused for it."""
    connection.connect()  # nothing to do when connected
    try:
        stale = connection.can_read()
    except (redis.ConnectionError, OSError):
        stale = True
    if stale:
        connection.disconnect()
        connection.connect()


def push(client: redis.Redis, envelope: Envelope, batch_size: int):
    """Append ``envelope`` (``client`` may be a pipeline); OK when it took the drain flag."""
    return PUSH(keys=PUSH_KEYS, args=_push_args(envelope, batch_size), client=client)


def _push_args(envelope: Envelope, batch_size: int) -> tuple:
    return (envelope.encode(), DRAIN_FLAG_TTL_SECONDS, batch_size, SEGMENT_PREFIX)


def waiting(connection: redis.Redis) -> int:
    """Deliveries queued and not claimed: the open list and the sealed segments."""
    pipe = connection.pipeline(transaction=False)
    pipe.llen(BUFFER_KEY)
    for segment in connection.lrange(SEALED_KEY, 0, -1):
        pipe.llen(segment)
    return sum(pipe.execute())


def oldest_waiting(connection: redis.Redis) -> bytes | None:
    """The delivery queued first and not claimed yet, if any."""
    segment = connection.lindex(SEALED_KEY, 0)
    found = connection.lindex(segment, 0) if segment is not None else None
    return found if found is not None else connection.lindex(BUFFER_KEY, 0)


def queued(connection: redis.Redis) -> bool:
    """Whether any delivery waits unclaimed (in the open list or a sealed segment)."""
    pipe = connection.pipeline(transaction=False)
    pipe.llen(BUFFER_KEY)
    pipe.llen(SEALED_KEY)
    return any(pipe.execute())


def pending(connection: redis.Redis) -> bool:
    """Whether any delivery waits or is claimed by a drain that has not committed it."""
    return queued(connection) or bool(
        next(connection.scan_iter(match=PROCESSING_PREFIX + "*", count=1000), None)
    )


def schedule_drain(connection: redis.Redis, queue_name: str) -> None:
    """Enqueue a drain job (callers hold or have just taken ``DRAIN_FLAG``)."""
    drain_queue(connection, queue_name).enqueue(
        DRAIN_JOB, retry=JOB_RETRY, job_timeout=600, result_ttl=60, failure_ttl=7 * 24 * 3600
    )


# The consumer's side: a drain claims a batch, holds it under a lease while it stores it, and
# gives back what it did not store; a drain that died is found by its lapsed lease.

# Atomically make a batch this drain's processing list and (re)take the lease: a crash at any
# point leaves every delivery in a queued list or in a claim. The oldest sealed segment (above)
# becomes the claim with one RENAME. Without one, up to ARGV[1] deliveries move from the open
# list one LMOVE each (Redis 6.2+): the append-only file records each as a short command, where
# copying the items with RPUSH would write every delivery into it a second time (and, under a
# backlog, make Redis rewrite the file every second or two).
# Returns how many deliveries the claim holds; the drain reads them with LRANGE (a script that
# returned them would copy every body into Lua and back).
CLAIM = Script(
    None,
    b"""
local claimed = 0
if redis.call('EXISTS', KEYS[2]) == 0 then
    local segment = redis.call('LPOP', KEYS[4])
    if segment and redis.call('EXISTS', segment) == 1 then
        redis.call('RENAME', segment, KEYS[2])
        claimed = redis.call('LLEN', KEYS[2])
    end
end
if claimed == 0 then
    while claimed < tonumber(ARGV[1]) and redis.call('LMOVE', KEYS[1], KEYS[2], 'LEFT', 'RIGHT') do
        claimed = claimed + 1
    end
end
if claimed > 0 then
    redis.call('SET', KEYS[3], '1', 'EX', ARGV[2])
end
return claimed
""",
)
# Put a processing list back at the head of the buffer, in its original order.
GIVE_BACK = Script(
    None,
    b"""
local items = redis.call('LRANGE', KEYS[1], 0, -1)
for i = #items, 1, -1 do
    redis.call('LPUSH', KEYS[2], items[i])
end
redis.call('DEL', KEYS[1])
return #items
""",
)


def claim_batch(
    connection: redis.Redis, holder: str, batch_size: int, lease_seconds: int
) -> list[bytes]:
    """Claim a batch for ``holder`` and read it, keeping the drain flag, in one round trip."""
    processing = PROCESSING_PREFIX + holder
    pipe = connection.pipeline(transaction=False)
    pipe.expire(DRAIN_FLAG, DRAIN_FLAG_TTL_SECONDS)
    CLAIM(
        keys=[BUFFER_KEY, processing, LEASE_PREFIX + holder, SEALED_KEY],
        args=[batch_size, lease_seconds],
        client=pipe,
    )
    pipe.lrange(processing, 0, -1)
    return pipe.execute()[2]


def acknowledge(connection: redis.Redis, holder: str) -> None:
    """``holder``'s batch is stored: its claim and lease are done with."""
    connection.delete(PROCESSING_PREFIX + holder, LEASE_PREFIX + holder)


def give_back(connection: redis.Redis, processing_key: str) -> int:
    return GIVE_BACK(keys=[processing_key, BUFFER_KEY], client=connection)


def recover_orphans(connection: redis.Redis) -> int:
    """Return deliveries claimed by drains whose lease expired (the drain died) to the buffer."""
    returned = 0
    for key in connection.scan_iter(match=PROCESSING_PREFIX + "*", count=1000):
        owner = key.decode().removeprefix(PROCESSING_PREFIX)
        if not connection.exists(LEASE_PREFIX + owner):
            returned += give_back(connection, key.decode())
    if returned:
        log.warning("returned %d deliveries claimed by a job that died", returned)
    return returned


def hand_back_flag(connection: redis.Redis) -> bool:
    """Release the drain flag; True if deliveries arrived meanwhile and this drain took it again.

    A producer that pushed before the release saw the flag and scheduled nothing, so its delivery
    is found by the length check after the release; one that pushes after schedules its own job.
    """
    connection.delete(DRAIN_FLAG)
    return bool(
        queued(connection) and connection.set(DRAIN_FLAG, "1", nx=True, ex=DRAIN_FLAG_TTL_SECONDS)
    )
