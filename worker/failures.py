"""Drain jobs that failed for good (retries exhausted, e.g. Postgres down for too long).

Their deliveries are not in the jobs: a failed batch goes back to the buffer before its job
fails. Listing tells an operator what went wrong; requeueing runs the drains again once it is
fixed (any later delivery or worker start also schedules one).
"""

from dataclasses import dataclass
from datetime import datetime

import redis
from rq.registry import FailedJobRegistry

from wa_analytics.core.queueing import drain_queue, waiting


@dataclass(frozen=True)
class FailedJob:
    job_id: str
    ended_at: datetime | None
    reason: str


def failed_jobs(connection: redis.Redis, queue_name: str) -> list[FailedJob]:
    registry = FailedJobRegistry(queue=drain_queue(connection, queue_name))
    jobs = []
    for job_id in registry.get_job_ids():
        job = registry.job_class.fetch(job_id, connection=connection)
        # The exception's own line: the last one of the traceback that is not indented.
        lines = [line for line in (job.exc_info or "").splitlines() if line[:1] not in " \t"]
        jobs.append(FailedJob(job_id, job.ended_at, lines[-1] if lines else "unknown"))
    return jobs


def requeue_failed(connection: redis.Redis, queue_name: str) -> int:
    registry = FailedJobRegistry(queue=drain_queue(connection, queue_name))
    job_ids = registry.get_job_ids()
    for job_id in job_ids:
        registry.requeue(job_id)
    return len(job_ids)


def waiting_deliveries(connection: redis.Redis) -> int:
    return waiting(connection)
