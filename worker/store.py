"""Writing a batch to Postgres in one transaction.

The fast path COPYs a batch straight into the raw tables. A batch expected to hold rows already
stored (``precheck``: replays come in runs, e.g. a sender re-sending a backlog) first asks which
of its deliveries and events are there (one index probe each, cheaper than a refused COPY) and
drops those. If the unique keys refuse the COPY all the same (no precheck, or a concurrent writer
stored a row meanwhile), the batch takes the safe path: COPY into temporary tables and insert
what is not there yet. Either way a retried batch is harmless.

An event already stored from another delivery (the CRM and Meta reporting one message, or a
sender re-sending it in a different body) is merged: the report that
``processing.precedence`` puts first is kept, so arrival order never decides what is stored.
"""

import logging
import uuid
from collections import Counter
from datetime import UTC, datetime

import orjson
import psycopg
from psycopg import errors
from psycopg.types.string import BytesBinaryDumper

from wa_analytics.core.queueing import Envelope
from worker.parsing.errors import reason_class
from worker.parsing.event import STATUS_UPDATED, Event, Rejected
from worker.processing import (
    Batch,
    delivery_row,
    event_row,
    precedence,
    rejected_row,
    worker_error,
)

DELIVERY_COLUMNS = "delivery_id, source, received_at, body"
EVENT_COLUMNS = (
    "event_id, event_name, channel_type, user_id, message_id, status, occurred_at, received_at,"
    " source, delivery_id, properties"
)
QUARANTINE_COLUMNS = "delivery_id, source, received_at, reason, item, item_path"

STAGING_TABLES = """
create temp table if not exists incoming_deliveries (
    delivery_id uuid, source text, received_at timestamptz, body json
) on commit delete rows;
create temp table if not exists incoming_events (
    event_id uuid, event_name text, channel_type text, user_id text, message_id text, status text,
    occurred_at timestamptz, received_at timestamptz, source text, delivery_id uuid,
    properties jsonb
) on commit delete rows;
create temp table if not exists incoming_quarantine (
    delivery_id uuid, source text, received_at timestamptz, reason text, item jsonb,
    item_path text
) on commit delete rows;
-- Emptied here too: reprocess writes many batches in one transaction, and a batch must not
-- merge its predecessors' rows again.
truncate incoming_deliveries, incoming_events, incoming_quarantine;
"""
# The SQL form of processing.precedence: replace a stored event only with a report that comes
# before it. A replaced row gets a new loaded_at, so incremental dbt models recompute it.
MERGE_EVENTS = f"""
insert into raw.events ({EVENT_COLUMNS})
-- In key order, so that two writers merging the same events lock them in the same order.
select {EVENT_COLUMNS} from incoming_events order by event_id
on conflict (event_id) do update set
    event_name = excluded.event_name, user_id = excluded.user_id,
    message_id = excluded.message_id, status = excluded.status,
    occurred_at = excluded.occurred_at, received_at = excluded.received_at,
    loaded_at = now(), source = excluded.source, delivery_id = excluded.delivery_id,
    properties = excluded.properties
where (excluded.source <> 'whatsapp', excluded.properties @> '{{"is_backfill": true}}',
       excluded.occurred_at, excluded.delivery_id)
    < (events.source <> 'whatsapp', events.properties @> '{{"is_backfill": true}}',
       events.occurred_at, events.delivery_id)
returning xmax = 0 as inserted
"""
# Run before MERGE_EVENTS: each event about to be replaced, with the contact and the time it
# had, so that incremental dbt builds recompute its message from its old time and its old
# contact too (the model messages_this_run).
NOTE_REPLACED_EVENTS = """
insert into raw.contact_revisions (user_id, message_id, occurred_at)
select events.user_id, events.message_id, events.occurred_at
from raw.events
inner join incoming_events on events.event_id = incoming_events.event_id
where (incoming_events.source <> 'whatsapp',
       incoming_events.properties @> '{"is_backfill": true}', incoming_events.occurred_at,
       incoming_events.delivery_id)
    < (events.source <> 'whatsapp', events.properties @> '{"is_backfill": true}',
       events.occurred_at, events.delivery_id)
"""
# Each table's rows are keyed by their first column (quarantine: by delivery and item path).
TABLES = (
    ("deliveries", DELIVERY_COLUMNS),
    ("events", EVENT_COLUMNS),
    ("quarantine", QUARANTINE_COLUMNS),
)
# The types each table's binary COPY sends (Postgres then skips parsing the text of timestamps
# and ids, a fifth of its work in loading raw.events). "bytea" sends bytes as they are: the
# batch holds uuids, JSON and jsonb in their binary forms already (processing.Batch), and
# Postgres reads them with the column's own type.
COPY_TYPES = {
    "deliveries": ["bytea", "text", "timestamptz", "bytea"],
    "events": ["bytea"] + ["text"] * 5 + ["timestamptz"] * 2 + ["text", "bytea", "bytea"],
    "quarantine": ["bytea", "text", "timestamptz", "text", "bytea", "text"],
}


def write_batch(conn: psycopg.Connection, batch: Batch, precheck: bool = True) -> dict[str, int]:
    """Store ``batch`` in one transaction; returns the rows actually added per table."""
    with conn.transaction(), conn.cursor() as cur:
        # psycopg's bytea dumper also unwraps DB-API Binary objects, in Python, value by value;
        # this one is compiled.
        cur.adapters.register_dumper(None, BytesBinaryDumper)
        try:
            with conn.transaction():
                return _copy_new_rows(cur, batch, precheck)
        except errors.UniqueViolation:
            return _copy_and_merge(cur, batch)


def held_stored_rows(batch: Batch, added: dict[str, int]) -> bool:
    """Whether some of ``batch``'s rows were stored before: the next batch is prechecked."""
    return added["deliveries"] < len(batch.deliveries) or added["events"] < len(batch.events)


def _copy_new_rows(cur: psycopg.Cursor, batch: Batch, precheck: bool) -> dict[str, int]:
    rows = {table: getattr(batch, table) for table, _ in TABLES}
    contested = []
    if precheck:
        rows, contested = _without_stored_rows(cur, batch)
    for table, columns in TABLES:
        _copy(cur, f"raw.{table}", columns, rows[table], COPY_TYPES[table])
    if contested:
        cur.execute(STAGING_TABLES)
        _merge_events(cur, contested)
    added = {table: len(table_rows) for table, table_rows in rows.items()}
    return added | quarantined_by_class(row[3] for row in rows["quarantine"])


def _without_stored_rows(cur: psycopg.Cursor, batch: Batch) -> tuple[dict, list[tuple]]:
    """The batch's rows not stored yet, and the stored events that a delivery not stored before
    reports again (merged by precedence, not skipped)."""
    known_deliveries = _stored_keys(cur, "deliveries", "delivery_id", batch.deliveries)
    known_events = _stored_keys(cur, "events", "event_id", batch.events)
    rows = {
        "deliveries": [r for r in batch.deliveries if r[0] not in known_deliveries],
        "events": [r for r in batch.events if r[0] not in known_events],
        # A delivery stored before has its quarantined items stored too.
        "quarantine": [r for r in batch.quarantine if r[0] not in known_deliveries],
    }
    contested = [r for r in batch.events if r[0] in known_events and r[9] not in known_deliveries]
    return rows, contested


def _stored_keys(cur: psycopg.Cursor, table: str, key: str, rows: list[tuple]) -> set[bytes]:
    """The keys of ``rows`` already in ``raw.<table>``, as 16 bytes."""
    if not rows:
        return set()
    cur.execute(
        f"select uuid_send({key}) from raw.{table} where {key} = any(%s::uuid[])",
        [[row[0].hex() for row in rows]],
    )
    return {found for (found,) in cur.fetchall()}


def _copy_and_merge(cur: psycopg.Cursor, batch: Batch) -> dict[str, int]:
    cur.execute(STAGING_TABLES)
    added = {}
    for table, columns in TABLES:
        rows = getattr(batch, table)
        if not rows:
            added[table] = 0
            continue
        if table == "events":
            added[table] = _merge_events(cur, rows)
            continue
        _copy(cur, f"incoming_{table}", columns, rows, COPY_TYPES[table])
        cur.execute(
            f"insert into raw.{table} ({columns}) select {columns} from incoming_{table}"
            f" on conflict do nothing returning {'reason' if table == 'quarantine' else 1}"
        )
        inserted = cur.fetchall()
        added[table] = len(inserted)
        if table == "quarantine":
            added |= quarantined_by_class(reason for (reason,) in inserted)
    return added


def quarantined_by_class(reasons) -> dict[str, int]:
    """The quarantined items added, by their reason's class (``quarantine.<class>`` keys): what
    the worker's metrics count them by."""
    return {f"quarantine.{name}": n for name, n in Counter(map(reason_class, reasons)).items()}


def _merge_events(cur: psycopg.Cursor, rows: list[tuple]) -> int:
    """Insert or, by precedence, replace ``rows``; returns how many were new events."""
    _copy(cur, "incoming_events", EVENT_COLUMNS, rows, COPY_TYPES["events"])
    cur.execute(NOTE_REPLACED_EVENTS)
    cur.execute(MERGE_EVENTS)
    return sum(inserted for (inserted,) in cur.fetchall())


def _copy(cur: psycopg.Cursor, table: str, columns: str, rows: list[tuple], types: list) -> None:
    if not rows:
        return
    with cur.copy(f"copy {table} ({columns}) from stdin (format binary)") as copy:
        copy.set_types(types)
        for row in rows:
            copy.write_row(row)


log = logging.getLogger(__name__)

# SQLSTATE classes in which PostgreSQL refuses rows for what they hold: a value it cannot take
# (22: data exception), a constraint (23: integrity), a size (54: an index row too long). Any
# other error is the database's (a connection, a deadlock, a full disk, a shutdown, a missing
# table or privilege, corruption): the batch goes back whole and is retried.
ROW_FAULT_CLASSES = frozenset({"22", "23", "54"})


def is_row_fault(exc: Exception, conn: psycopg.Connection) -> bool:
    """Whether ``exc`` says PostgreSQL (or the client, sending them) refused the rows for what
    they hold, rather than that the database is in trouble."""
    if conn.broken or conn.closed:
        return False
    sqlstate = getattr(exc, "sqlstate", None)
    if sqlstate is None:  # raised by the client: a value it cannot send, or a lost connection
        return not isinstance(exc, psycopg.OperationalError | psycopg.InterfaceError)
    return sqlstate[:2] in ROW_FAULT_CLASSES


def write_isolating(conn: psycopg.Connection, batch: Batch, precheck: bool = True) -> Counter:
    """``write_batch``, except that rows PostgreSQL refuses fail their own delivery alone.

    A refused batch is split in halves until each refusal is down to one delivery, and the
    rest is stored. If the database takes a known-good delivery (``accepts_canary``), the
    refused one is stored with every item quarantined and the reason; if not even that is
    taken, it becomes one of ``batch.dead_letters``. If the database refuses the known-good
    delivery too, nothing is the delivery's fault: the error is raised and the batch retried.
    """
    try:
        return Counter(write_batch(conn, batch, precheck))
    except Exception as exc:
        if not is_row_fault(exc, conn):
            raise
        failure = exc
    if len(batch.delivery_ids()) > 1:
        first, second = batch.split()
        return write_isolating(conn, first) + write_isolating(conn, second)
    if not accepts_canary(conn):
        raise RowsRefused(f"the database refuses known-good rows too: {refusal_reason(failure)}")
    reason = f"PostgreSQL refused this delivery's rows: {refusal_reason(failure)}"
    log.warning("quarantining a delivery's items: %s", reason)
    try:
        return Counter(write_batch(conn, with_items_quarantined(batch, reason)))
    except Exception as exc:
        if not is_row_fault(exc, conn):
            raise
        reason += f"; then its quarantine: {refusal_reason(exc)}"
    if not batch.deliveries:  # re-derived from a stored delivery (reprocess): that one stays
        raise RowsRefused(reason)
    batch.dead_letters.append((as_queued(batch.deliveries[0]), reason))
    return Counter(dead_letters=1)


def as_queued(delivery: tuple) -> bytes:
    """A delivery row as a queued envelope, its body as it would be stored: redacted, so the
    dead letter keeps no text, and requeued it derives the same events."""
    delivery_id, source, received_at, body = delivery
    return Envelope(
        str(uuid.UUID(bytes=delivery_id)), source, received_at.timestamp(), body
    ).encode()


class RowsRefused(Exception):
    """PostgreSQL refused rows, in its words without the rows' values: its DETAIL quotes the
    failing row (phone numbers among them), which would reach the logs and RQ's job records."""


def refusal_reason(exc: Exception) -> str:
    """The server's words (never the rows' values: no detail), or where the client failed."""
    diag = getattr(exc, "diag", None)
    if diag is not None and diag.message_primary:
        return f"{exc.sqlstate} {diag.message_primary[:300]}"
    return worker_error(exc)


def with_items_quarantined(batch: Batch, reason: str) -> Batch:
    """One delivery's batch with its events turned into quarantined items, and in their place
    the best report of each that another delivery of the batch made, if any."""
    kept = Batch(deliveries=batch.deliveries, quarantine=list(batch.quarantine))
    refused = set(batch.delivery_ids())
    for row in batch.events:
        others = [other for other in batch.runners_up.get(row[0], []) if other[9] not in refused]
        if others:
            kept.add(None, [min(others, key=precedence)])
    for number, row in enumerate(batch.events):
        event_id, name, _, user_id, message_id, status, occurred_at, received_at, source = row[:9]
        item = {
            "event_name": name,
            "user_id": user_id,
            "message_id": message_id,
            "status": status,
            "occurred_at": occurred_at.isoformat(),
            "properties": orjson.loads(row[10][1:]),  # jsonb's binary form: a version byte first
        }
        path = f"events[{number}]"
        kept.quarantine.append(
            rejected_row(row[9], source, received_at, Rejected(path, reason, item))
        )
    return kept


def accepts_canary(conn: psycopg.Connection) -> bool:
    """Whether the database takes a known-good delivery, event and quarantined item of each
    source now (in a transaction rolled back): if not, a refusal is the database's, not a
    delivery's."""
    now, canary = datetime.now(UTC), Batch()
    for source in ("whatsapp", "crm"):
        delivery_id = uuid.uuid4().bytes
        event = Event(STATUS_UPDATED, "+16315551234", f"canary.{uuid.uuid4()}", now, "sent")
        canary.add(
            delivery_row(delivery_id, source, now, b"{}"),
            [event_row(event, delivery_id, source, now)],
            [rejected_row(delivery_id, source, now, Rejected("$", "canary", {}))],
        )
    try:
        with conn.transaction():
            write_batch(conn, canary, precheck=False)
            raise psycopg.Rollback()
    except Exception:
        return False
    return True
