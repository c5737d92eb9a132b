"""Writing a batch to Postgres: COPY into temporary tables, then one insert per table that skips
what is already there. The unique keys make a retried batch harmless."""

import psycopg

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


def write_batch(conn: psycopg.Connection, batch: Batch) -> dict[str, int]:
    """Store ``batch`` in one transaction; returns the rows actually added per table."""
    added = {}
    with conn.transaction(), conn.cursor() as cur:
        cur.execute(STAGING_TABLES)
        for table, columns, rows in (
            ("deliveries", DELIVERY_COLUMNS, batch.deliveries),
            ("events", EVENT_COLUMNS, batch.events),
            ("quarantine", QUARANTINE_COLUMNS, batch.quarantine),
        ):
            if not rows:
                added[table] = 0
                continue
            with cur.copy(f"copy incoming_{table} ({columns}) from stdin") as copy:
                for row in rows:
                    copy.write_row(row)
            cur.execute(
                f"insert into raw.{table} ({columns}) select {columns} from incoming_{table}"
                " on conflict do nothing"
            )
            added[table] = cur.rowcount
    return added
