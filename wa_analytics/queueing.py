"""The delivery buffer in Redis, shared by the ingest service (producer) and the worker (consumer).

A webhook delivery is appended to one Redis list (one RPUSH: cheap, so the service answers fast).
An RQ job, ``worker.jobs.drain_deliveries``, drains that list in batches of many deliveries, so
one job (and one COPY) serves thousands of webhooks. At most one drain job is pending per
``DRAIN_FLAG``; the producer enqueues one only when the flag is not set, which keeps RQ's per-job
cost off the hot path. See ``worker/jobs.py`` for how the flag is handed back without a race.
"""

import time
import uuid
from typing import NamedTuple

import orjson
import redis
from redis.backoff import NoBackoff
from redis.commands.core import Script
from redis.retry import Retry
from rq import Queue
from rq import Retry as JobRetry

BUFFER_KEY = "wa:deliveries"
DRAIN_FLAG = "wa:drain:scheduled"
PROCESSING_PREFIX = "wa:processing:"
LEASE_PREFIX = "wa:lease:"
DRAIN_JOB = "worker.jobs.drain_deliveries"
# A drain job that died leaves the flag behind; it expires so the next delivery schedules anew.
DRAIN_FLAG_TTL_SECONDS = 60
# Backoff for a drain job whose batch failed (Postgres down): about 25 minutes in all.
JOB_RETRY = JobRetry(max=10, interval=[1, 2, 5, 10, 30, 60, 120, 300, 300, 600])
# Append a delivery and take the drain flag if it is free, in one command and one reply (the
# hot path of every webhook). Returns OK when this delivery took the flag.
PUSH = Script(
    None,
    b"""
redis.call('RPUSH', KEYS[1], ARGV[1])
return redis.call('SET', KEYS[2], '1', 'NX', 'EX', ARGV[2])
""",
)


def redis_client(url: str, timeout: float = 0.5) -> redis.Redis:
    """A client that fails within ``timeout`` when Redis is unreachable, instead of retrying."""
    return redis.Redis.from_url(
        url,
        socket_timeout=timeout,
        socket_connect_timeout=timeout,
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


def push_delivery(connection: redis.Redis, queue_name: str, source: str, body: bytes) -> str:
    """Queue one delivery; returns its id. Raises ``redis.RedisError`` if it was not queued."""
    envelope = Envelope(delivery_id_for(source, body), source, time.time(), body)
    scheduled_now = PUSH(
        keys=[BUFFER_KEY, DRAIN_FLAG],
        args=[envelope.encode(), DRAIN_FLAG_TTL_SECONDS],
        client=connection,
    )
    if scheduled_now is not None:
        schedule_drain(connection, queue_name)
    return envelope.delivery_id


def schedule_drain(connection: redis.Redis, queue_name: str) -> None:
    """Enqueue a drain job (callers hold or have just taken ``DRAIN_FLAG``)."""
    drain_queue(connection, queue_name).enqueue(
        DRAIN_JOB, retry=JOB_RETRY, job_timeout=600, result_ttl=60, failure_ttl=7 * 24 * 3600
    )
