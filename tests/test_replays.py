"""Duplicates and disorder change nothing: the same deliveries replayed three times, each time
in another order and through the HTTP door, a real RQ worker and ``dbt build``, give identical
``raw.events`` and identical marts."""

import random
import time

from conftest import RAW_TABLES
from helpers import (
    build,
    cloud_api_delivery,
    crm_event,
    mart_snapshot,
    run_worker,
    signed_post,
    status,
    table_rows,
    text_message,
)

from wa_analytics.demo.traffic import CRM_PATH, WHATSAPP_PATH, Delivery, generate_traffic

# When a delivery arrived and when its row was committed differ from one replay to the next.
ARRIVAL_COLUMNS = frozenset({"received_at", "loaded_at"})
NOW = int(time.time())


def send(client, redis_conn, settings, deliveries, chunks: int) -> None:
    """Post every delivery, draining after each of ``chunks`` parts: two reports of one event
    then meet in one batch or in different ones, in either order."""
    size = -(-len(deliveries) // chunks)
    for first in range(0, len(deliveries), size):
        for delivery in deliveries[first : first + size]:
            assert signed_post(client, delivery.path, delivery.body).status_code == 200
        run_worker(redis_conn, settings)


def test_three_shuffled_replays_give_identical_events_and_marts(client, db, redis_conn, settings):
    deliveries = generate_traffic(seed=31, contacts=40, days=3).deliveries
    assert any(d.path == CRM_PATH for d in deliveries)

    random.Random(1).shuffle(deliveries)
    send(client, redis_conn, settings, deliveries, chunks=1)
    build("--full-refresh")
    events = table_rows(db, "raw", "events")
    content = table_rows(db, "raw", "events", ARRIVAL_COLUMNS)
    marts = mart_snapshot(db)
    mart_content = mart_snapshot(db, {"loaded_at"})
    assert len(events) > 300 and marts["responses"] and marts["message_delivery"]

    # Replayed into the same database in another order: not one row changes, not even its
    # loaded_at, and the incremental build gives the same marts.
    random.Random(2).shuffle(deliveries)
    send(client, redis_conn, settings, deliveries, chunks=3)
    assert table_rows(db, "raw", "events") == events
    build()
    assert mart_snapshot(db) == marts

    # Replayed into an empty database in a third order, drained in many small parts.
    db.execute(f"truncate {RAW_TABLES}")
    random.Random(3).shuffle(deliveries)
    send(client, redis_conn, settings, deliveries, chunks=7)
    assert table_rows(db, "raw", "events", ARRIVAL_COLUMNS) == content
    build("--full-refresh")
    assert mart_snapshot(db, {"loaded_at"}) == mart_content


def test_where_meta_and_the_crm_differ_meta_is_kept_in_any_order(client, db, redis_conn, settings):
    """The CRM reports a status a second later than Meta and without its pricing: whichever
    arrives first, and whether they share a batch or not, Meta's report is the stored one."""
    meta = Delivery(
        WHATSAPP_PATH,
        cloud_api_delivery(
            [text_message("wamid.IN", "16315551234", NOW - 60)],
            [status("wamid.OUT", "16315551234", NOW - 30, "delivered")],
        ),
    )
    crm = [
        Delivery(CRM_PATH, crm_event("whatsapp.status.updated", "wamid.OUT", "+16315551234",
                                     NOW - 29, status="delivered")),
        Delivery(CRM_PATH, crm_event("whatsapp.message.received", "wamid.IN", "16315551234",
                                     NOW - 59)),
    ]  # fmt: skip
    outcomes = []
    for order, chunks in (([*crm, meta], 1), ([*crm, meta], 2), ([meta, *crm], 1),
                          ([meta, *crm], 2)):  # fmt: skip
        db.execute(f"truncate {RAW_TABLES}")
        send(client, redis_conn, settings, order, chunks)
        outcomes.append(table_rows(db, "raw", "events", ARRIVAL_COLUMNS))
    assert all(outcome == outcomes[0] for outcome in outcomes)
    stored = db.execute(
        "select source, occurred_at = to_timestamp(%s), properties ? 'pricing_category'"
        " from raw.events where event_name = 'status_updated'",
        (NOW - 30,),
    ).fetchall()
    assert stored == [("whatsapp", True, True)]
    assert db.execute("select distinct source from raw.events").fetchall() == [("whatsapp",)]
