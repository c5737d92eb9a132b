"""Re-derive every event from the stored deliveries, e.g. after a parser fix."""

import logging

from wa_analytics.core import database
from worker.phones import PhoneRules
from worker.processing import Batch, add_stored_delivery, uuid_bytes
from worker.store import write_isolating

log = logging.getLogger(__name__)


def reprocess(database_url: str, rules: PhoneRules | None = None, chunk: int = 5000) -> dict:
    """Replace ``raw.events`` and ``raw.quarantine`` with what the current parsers derive.

    Where two deliveries report one event, ``processing.precedence`` picks the same report as
    when they first arrived, whatever the replay order. One transaction: readers see the old
    rows or the new, never a mix, and the worker waits on the lock rather than writing into a
    half-rebuilt table. A delivery whose rows fail (the parser, or PostgreSQL refusing them)
    has its items quarantined with the reason, alone, as in the worker.
    """
    totals = {"deliveries": 0, "events": 0, "quarantine": 0}
    rules = rules or PhoneRules()
    with database.connect(database_url) as conn, conn.transaction():
        conn.execute("lock table raw.events, raw.quarantine in exclusive mode")
        conn.execute("truncate raw.events, raw.quarantine")
        with conn.cursor(name="stored_deliveries") as cursor:
            cursor.execute(
                "select delivery_id::text, source, received_at, body::text from raw.deliveries"
                " order by received_at, delivery_id"
            )
            while rows := cursor.fetchmany(chunk):
                batch = Batch()
                for delivery_id, source, received_at, body in rows:
                    add_stored_delivery(
                        batch, uuid_bytes(delivery_id), source, received_at, body, rules
                    )
                added = write_isolating(conn, batch)
                totals["deliveries"] += len(rows)
                totals["events"] += added["events"]
                totals["quarantine"] += added["quarantine"]
    log.info("reprocessed %s", totals)
    return totals
