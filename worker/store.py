"""Writing a batch to Postgres in one transaction.

The fast path: ask which of the batch's deliveries and events are already stored (one index probe
each, far cheaper than writing), drop those, and COPY the rest straight into the raw tables. If a
concurrent writer stored one of them in the meantime, the unique keys refuse the COPY; the batch
then takes the safe path: COPY into temporary tables and insert what is not there yet. Either
way a retried batch is harmless.
"""

import psycopg
from psycopg import errors

from worker.processing import Batch

DELIVERY_COLUMNS = "delivery_id, source, received_at, body"
EVENT_COLUMNS = (
    "event_id, event_name, channel_type, user_id, message_id, status, occurred_at, received_at,"
    " source, delivery_id, properties"
)
QUARANTINE_COLUMNS = "delivery_id, source, received_at, reason, item, item_path"

STAGING_TABLES = """
create temp table if not exists incoming_deliveries (
    delivery_id uuid, source text, received_at timestamptz, body jsonb
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
"""
# Each table's rows are keyed by their first column (quarantine: by delivery and item path).
TABLES = (
    ("deliveries", DELIVERY_COLUMNS),
    ("events", EVENT_COLUMNS),
    ("quarantine", QUARANTINE_COLUMNS),
)


def write_batch(conn: psycopg.Connection, batch: Batch) -> dict[str, int]:
    """Store ``batch`` in one transaction; returns the rows actually added per table."""
    with conn.transaction(), conn.cursor() as cur:
        try:
            with conn.transaction():
                return _copy_new_rows(cur, batch)
        except errors.UniqueViolation:
            return _copy_and_merge(cur, batch)


def _copy_new_rows(cur: psycopg.Cursor, batch: Batch) -> dict[str, int]:
    known_deliveries = _stored_keys(cur, "deliveries", "delivery_id", batch.deliveries)
    known_events = _stored_keys(cur, "events", "event_id", batch.events)
    rows = {
        "deliveries": [r for r in batch.deliveries if _hex(r[0]) not in known_deliveries],
        "events": [r for r in batch.events if _hex(r[0]) not in known_events],
        # A delivery stored before has its quarantined items stored too.
        "quarantine": [r for r in batch.quarantine if _hex(r[0]) not in known_deliveries],
    }
    for table, columns in TABLES:
        _copy(cur, f"raw.{table}", columns, rows[table])
    return {table: len(table_rows) for table, table_rows in rows.items()}


def _stored_keys(cur: psycopg.Cursor, table: str, key: str, rows: list[tuple]) -> set[str]:
    """The keys of ``rows`` already in ``raw.<table>``, as 32 hex digits."""
    if not rows:
        return set()
    cur.execute(
        f"select replace({key}::text, '-', '') from raw.{table} where {key} = any(%s::uuid[])",
        [[str(row[0]) for row in rows]],
    )
    return {found for (found,) in cur.fetchall()}


def _hex(uuid_text: object) -> str:
    return str(uuid_text).replace("-", "")


def _copy_and_merge(cur: psycopg.Cursor, batch: Batch) -> dict[str, int]:
    cur.execute(STAGING_TABLES)
    added = {}
    for table, columns in TABLES:
        rows = getattr(batch, table)
        if not rows:
            added[table] = 0
            continue
        _copy(cur, f"incoming_{table}", columns, rows)
        cur.execute(
            f"insert into raw.{table} ({columns}) select {columns} from incoming_{table}"
            " on conflict do nothing"
        )
        added[table] = cur.rowcount
    return added


def _copy(cur: psycopg.Cursor, table: str, columns: str, rows: list[tuple]) -> None:
    if not rows:
        return
    with cur.copy(f"copy {table} ({columns}) from stdin") as copy:
        for row in rows:
            copy.write_row(row)
