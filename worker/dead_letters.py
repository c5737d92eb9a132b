"""Deliveries the worker could store neither as events nor as quarantined items: dead letters.

Rare by construction (a delivery whose redaction fails, or whose rows PostgreSQL refuses even
when every item is quarantined), and never a reason to hold back the deliveries behind it.
Each is kept in Redis as it was queued, with the reason, until an operator requeues it after a
fix (``wa-analytics failed --requeue``); keyed by delivery id, so keeping one twice is harmless.
"""

import hashlib
import logging
import time
from dataclasses import dataclass
from datetime import UTC, datetime

import orjson
import redis

from wa_analytics.core.queueing import DEAD_LETTERS_KEY, Envelope, push, schedule_drain

log = logging.getLogger(__name__)


@dataclass(frozen=True)
class DeadLetter:
    delivery_id: str
    source: str
    received_at: datetime | None
    failed_at: datetime
    reason: str
    body_bytes: int


def keep_dead_letters(connection: redis.Redis, letters: list[tuple[bytes, str]]) -> None:
    """Keep each queued delivery (its encoded envelope) with the reason it could not be stored."""
    if not letters:
        return
    for encoded, reason in letters:
        log.error("dead letter %s (see `wa-analytics failed`): %s", _key(encoded), reason)
    failed_at = time.time()
    connection.hset(
        DEAD_LETTERS_KEY,
        mapping={
            _key(encoded): orjson.dumps({"reason": reason, "failed_at": failed_at})
            + b"\n"
            + encoded
            for encoded, reason in letters
        },
    )


def dead_letters(connection: redis.Redis) -> list[DeadLetter]:
    letters = []
    for key, value in connection.hgetall(DEAD_LETTERS_KEY).items():
        note, _, encoded = value.partition(b"\n")
        meta, envelope = orjson.loads(note), _envelope_header(encoded)
        received = envelope.get("received_at")
        letters.append(
            DeadLetter(
                delivery_id=key.decode(),
                source=str(envelope.get("source", "unknown")),
                received_at=datetime.fromtimestamp(received, UTC)
                if isinstance(received, int | float)
                else None,
                failed_at=datetime.fromtimestamp(meta["failed_at"], UTC),
                reason=meta["reason"],
                body_bytes=len(encoded.partition(b"\n")[2]),
            )
        )
    return sorted(letters, key=lambda letter: letter.failed_at)


def requeue_dead_letters(connection: redis.Redis, queue_name: str, batch_size: int) -> int:
    """Queue every dead letter again (after a fix); a drain stores or dead-letters it anew.
    One whose envelope cannot be read stays (nothing could store it)."""
    requeued = 0
    for key, value in connection.hgetall(DEAD_LETTERS_KEY).items():
        try:
            envelope = Envelope.decode(value.partition(b"\n")[2])
        except (ValueError, KeyError, TypeError):
            continue
        # One transaction, the letter taken out first: a drain that fails the delivery again
        # can only keep it anew after this, never have its new letter deleted by it.
        pipe = connection.pipeline(transaction=True)
        pipe.hdel(DEAD_LETTERS_KEY, key)
        push(pipe, envelope, batch_size)
        if pipe.execute()[1]:
            schedule_drain(connection, queue_name)
        requeued += 1
    return requeued


def _envelope_header(encoded: bytes) -> dict:
    try:
        header = orjson.loads(encoded.partition(b"\n")[0])
    except orjson.JSONDecodeError:
        return {}
    return header if isinstance(header, dict) else {}


def _key(encoded: bytes) -> str:
    """The delivery's id, or for an envelope that cannot be read, a digest of its bytes."""
    delivery_id = _envelope_header(encoded).get("id")
    if isinstance(delivery_id, str):
        return delivery_id
    return "unreadable-" + hashlib.sha256(encoded).hexdigest()[:32]
