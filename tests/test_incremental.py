"""Late and duplicated data: an incremental build after a second batch of late, out-of-order and
duplicated events gives exactly the marts a full refresh gives."""

import random
import time

import orjson
import psycopg
from helpers import (
    batch_of,
    build,
    cloud_api_delivery,
    crm_event,
    mart_snapshot,
    status,
    store_deliveries,
    table_rows,
    text_message,
)

from wa_analytics.core.dbt import PROJECT_ROOT, run_dbt
from wa_analytics.demo.traffic import CRM_PATH, WHATSAPP_PATH, Delivery, generate_traffic
from worker.store import write_batch

LONE_CONTACT = "447911000123"
OLD_CONTACT = "447911000124"


def reclassified(item: dict | None = None, messages=()) -> Delivery:
    statuses = [item] if item else []
    return Delivery(WHATSAPP_PATH, orjson.dumps(cloud_api_delivery(messages, statuses)))


def test_incremental_build_equals_full_refresh(servers, db):
    traffic = generate_traffic(seed=23, contacts=60, days=4)
    deliveries = traffic.deliveries
    cut = int(len(deliveries) * 0.6)
    first, second = deliveries[:cut], deliveries[cut:]
    rng = random.Random(1)
    # The second batch arrives shuffled, with retries of both batches mixed in.
    second = second + rng.sample(first, 40) + rng.sample(second, 20)
    rng.shuffle(second)

    # A message known first from a status only, then seen inbound: it is no longer an outbound
    # message, and its contact, who has nothing else, must lose their message_delivery row.
    now = int(time.time()) - 600
    first = first + [reclassified(status("wamid.RECLASS", LONE_CONTACT, now, "delivered"))]
    second = second + [reclassified(messages=[text_message("wamid.RECLASS", LONE_CONTACT, now)])]
    # The same ten days back, on a day with nothing else: the daily marts must lose that day.
    old = now - 10 * 86400
    first = first + [reclassified(status("wamid.RECLASS.OLD", OLD_CONTACT, old, "delivered"))]
    second = second + [reclassified(messages=[text_message("wamid.RECLASS.OLD", OLD_CONTACT, old)])]

    # A message the CRM reported under one number and Meta, whose report comes first, under
    # another: it leaves its first contact, who has nothing else and must leave the marts.
    first = first + [
        Delivery(
            CRM_PATH,
            orjson.dumps(
                crm_event("whatsapp.message.received", "wamid.MOVED", "+447911000999", now)
            ),
        )
    ]
    second = second + [reclassified(messages=[text_message("wamid.MOVED", "447911000888", now)])]

    store_deliveries(servers["database_url"], first)
    build("--full-refresh")
    store_deliveries(servers["database_url"], second)
    touched, contacts = db.execute(
        "select count(distinct user_id) filter (where loaded_at = (select max(loaded_at)"
        " from raw.events)), count(distinct user_id) from raw.events"
    ).fetchone()
    assert 0 < touched < contacts  # the incremental build has contacts to leave alone

    build("--vars", "{incremental_lookback_hours: 0}")
    compiled = PROJECT_ROOT / "target/run/wa_analytics/dbt_project/models/marts/responses.sql"
    assert "delete from" in compiled.read_text()  # it really was an incremental run
    incremental = mart_snapshot(db)

    build("--full-refresh")
    full = mart_snapshot(db)
    assert set(incremental) == set(full) and len(full) >= 11
    for mart in full:
        assert incremental[mart] == full[mart], mart
    assert full["responses"] and full["message_delivery"] and full["conversations"]
    lone = db.execute(
        "select count(*) from marts.message_delivery where message_id = 'wamid.RECLASS'"
    ).fetchone()[0]
    assert lone == 0
    moved = db.execute(
        "select contact_id from marts.business_contacts where contact_id like '+44791100099%'"
        " or contact_id like '+44791100088%'"
    ).fetchall()
    assert moved == [("+447911000888",)]


def test_contacts_who_never_write_do_not_hold_back_where_builds_read_from(servers, db):
    """A campaign's recipients who never reply add no conversation: the next build still reads
    from where the last one could see up to, not from the latest contact who wrote in."""
    store_deliveries(
        servers["database_url"],
        [reclassified(messages=[text_message("wamid.W1", "447911000111", int(time.time()) - 60)])],
    )
    build("--full-refresh")
    store_deliveries(
        servers["database_url"],
        [reclassified(status("wamid.W2", "447911000222", int(time.time()) - 30, "delivered"))],
    )
    build()
    first, latest = db.execute("select min(loaded_at), max(loaded_at) from raw.events").fetchone()
    read_from, read_until = db.execute(
        "select read_from, read_until from intermediate.run_limits"
    ).fetchone()
    assert first < read_from <= latest < read_until
    assert db.execute("select max(loaded_at) from marts.conversations").fetchone()[0] < latest
    # This build recomputed the one contact with a new event, and no other.
    assert db.execute("select contact_id from intermediate.contacts_this_run").fetchall() == [
        ("+447911000222",)
    ]


def test_a_batch_committed_after_a_build_read_is_in_the_next_build(servers, db):
    """loaded_at is when the writing transaction started, and its rows show only when it
    commits: a worker's batch that commits after a build has read raw.events carries a loaded_at
    from before that build, and from before another worker's batch the build did read. The next
    build still reads it, with no lookback to lean on."""

    def message(message_id: str, contact: str, ago: int) -> list[Delivery]:
        return [reclassified(messages=[text_message(message_id, contact, int(time.time()) - ago)])]

    store_deliveries(servers["database_url"], message("wamid.C1", "447911000301", 90))
    build("--full-refresh")
    with psycopg.connect(servers["database_url"]) as slow_writer:
        slow_writer.execute("select 1")  # its transaction starts: its rows' loaded_at
        write_batch(slow_writer, batch_of(message("wamid.C2", "447911000302", 60)))
        store_deliveries(servers["database_url"], message("wamid.C3", "447911000303", 30))
        build("--vars", "{incremental_lookback_hours: 0}")
        slow_writer.commit()
    c2, c3 = db.execute(
        "select loaded_at from raw.events where message_id in ('wamid.C2', 'wamid.C3')"
        " order by message_id"
    ).fetchall()
    assert c2 < c3  # committed last, loaded first
    build("--vars", "{incremental_lookback_hours: 0}")
    contacts = db.execute("select contact_id from marts.business_contacts order by 1").fetchall()
    assert contacts == [("+447911000301",), ("+447911000302",), ("+447911000303",)]


def test_daily_marts_recompute_every_day_after_their_upstream_is_rebuilt_alone(servers, db):
    """The daily marts recompute only the days their upstream recorded as changed; when the
    upstream was rebuilt on its own (a full refresh of it alone), every day may have changed."""
    deliveries = generate_traffic(seed=5, contacts=20, days=3).deliveries
    half = len(deliveries) // 2
    store_deliveries(servers["database_url"], deliveries[:half])
    build("--full-refresh")
    store_deliveries(servers["database_url"], deliveries[half:])
    # `run`: the marts not selected are behind, so their relationship tests would not hold yet.
    run_dbt(["run", "--full-refresh", "--select", "+message_delivery", "+responses"])
    build("--vars", "{incremental_lookback_hours: 0}")
    daily = ("delivery_daily", "delivery_failures_daily", "response_times_daily",
             "agent_performance_daily", "inbound_traffic_hourly", "hourly_traffic")  # fmt: skip
    incremental = {mart: rows for mart, rows in mart_snapshot(db).items() if mart in daily}
    build("--full-refresh")
    full = {mart: rows for mart, rows in mart_snapshot(db).items() if mart in daily}
    assert full["delivery_daily"] and full["response_times_daily"] and full["hourly_traffic"]
    assert incremental == full


def test_timelines_recomputed_from_where_they_changed_equal_full_refresh(servers, db):
    """Incremental builds recompute the contacts with a changed message, and the daily marts
    from the first day that may have changed. Late events land in the middle of histories, an outbound message known
    from its status turns out to be an inbound one sent later, one build has no record of when
    the models were last built (as after an upgrade), and one upstream model is rebuilt alone:
    after several incremental builds the result is what a full refresh gives."""
    deliveries = generate_traffic(seed=41, contacts=50, days=5).deliveries
    half = len(deliveries) // 2
    first, rest = deliveries[:half], deliveries[half:]
    rng = random.Random(7)
    rng.shuffle(rest)  # later chunks carry events older than earlier chunks'
    chunks = [rest[i::3] for i in range(3)]

    # A status first, two hours before the inbound message with the same id: the message moves
    # to a later time, and the contact's earlier timeline must be recomputed from its old time.
    now = int(time.time()) - 600
    contact = "447911000321"
    first = first + [
        reclassified(messages=[text_message("wamid.EARLY.IN", contact, now - 30 * 3600)]),
        reclassified(status("wamid.TURNS.IN", contact, now - 28 * 3600, "delivered")),
        reclassified(messages=[text_message("wamid.LATER.IN", contact, now - 3600)]),
    ]
    chunks[1] = chunks[1] + [
        reclassified(messages=[text_message("wamid.TURNS.IN", contact, now - 26 * 3600)])
    ]

    def timelines() -> dict[str, list[tuple]]:
        snapshot = mart_snapshot(db)
        for table in ("int_conversations_windowed", "int_waits_paired"):
            snapshot[table] = table_rows(db, "intermediate", table)
        return snapshot

    store_deliveries(servers["database_url"], first)
    build("--full-refresh")
    for number, chunk in enumerate(chunks):
        store_deliveries(servers["database_url"], chunk)
        if number == 1:
            # As after an upgrade from a version that kept no read points: every contact.
            db.execute("update audit.dbt_builds set read_until = null")
        if number == 2:
            # Rebuilt alone: every contact downstream may have changed.
            run_dbt(["run", "--full-refresh", "--select", "int_messages_unioned"])
        build("--vars", "{incremental_lookback_hours: 0}")
    incremental = timelines()
    recomputed, contacts = db.execute(
        "select (select count(*) from intermediate.contacts_this_run),"
        " (select count(distinct contact_id) from intermediate.int_messages_unioned)"
    ).fetchone()

    build("--full-refresh")
    full = timelines()
    assert full["int_waits_paired"] and full["responses"] and full["conversations"]
    for table in full:
        assert incremental[table] == full[table], table
    assert 0 < recomputed < contacts  # the last build recomputed some contacts, not all
    moved = db.execute(
        "select direction from intermediate.int_messages_unioned"
        " where message_id = 'wamid.TURNS.IN'"
    ).fetchone()
    assert moved == ("inbound",)


def test_a_report_that_moves_a_message_later_recomputes_it_from_its_old_time(servers, db):
    """The CRM reports an inbound message first; Meta's report of it, which comes first by
    precedence, says it happened two days later. The stored event is replaced, the worker keeps
    the contact and time it had, and the incremental build recomputes the contact from that old
    time: the conversation and the daily counts of the old day go, as in a full refresh."""
    now = int(time.time()) - 600
    contact = "+447911000555"
    crm = crm_event("whatsapp.message.received", "wamid.LATER", contact, now - 2 * 86400)
    store_deliveries(
        servers["database_url"],
        [
            Delivery(CRM_PATH, orjson.dumps(crm)),
            reclassified(messages=[text_message("wamid.OTHER", "447911000556", now - 2 * 86400)]),
        ],
    )
    build("--full-refresh")
    store_deliveries(
        servers["database_url"],
        [reclassified(messages=[text_message("wamid.LATER", contact.lstrip("+"), now)])],
    )
    revisions = db.execute(
        "select user_id, message_id, occurred_at from raw.contact_revisions"
    ).fetchall()
    assert [(r[0], r[1], int(r[2].timestamp())) for r in revisions] == [
        (contact, "wamid.LATER", now - 2 * 86400)
    ]
    build("--vars", "{incremental_lookback_hours: 0}")
    incremental = mart_snapshot(db)
    build("--full-refresh")
    assert incremental == mart_snapshot(db)
    opened = db.execute(
        "select opened_at from marts.conversations where contact_id = %s", (contact,)
    ).fetchall()
    assert [int(o[0].timestamp()) for o in opened] == [now]


def test_a_link_that_arrives_after_the_messages_joins_two_contacts(servers, db):
    """A contact writes from their old number, then from their new one; another writes with a
    username (only a business-scoped id), then with their number. The links (Meta's number
    change, and a message naming both) arrive after every message, and after a build: the next,
    incremental, build gives one contact each, under the id first seen, as a full refresh
    does, in contact growth, waits and SLA alike."""
    now = int(time.time()) - 3 * 3600
    old, new, bsuid, number = "447911000501", "447911000502", "GB.77001122", "447911000503"
    first = [
        reclassified(messages=[text_message("wamid.OLD.IN", old, now)]),
        reclassified(status("wamid.OLD.OUT", old, now + 60, "delivered")),
        reclassified(messages=[text_message("wamid.NEW.IN", new, now + 7200)]),
        reclassified(
            messages=[
                {**text_message("wamid.U.IN", "", now + 100), "from": None, "from_user_id": bsuid}
            ]
        ),  # fmt: skip
        reclassified(status("wamid.U.OUT", None, now + 200, "read", recipient_user_id=bsuid)),
    ]
    system = {"type": "user_changed_number", "wa_id": new, "body": "changed"}
    links = [
        reclassified(
            messages=[
                {
                    "from": old,
                    "id": "wamid.SYS",
                    "timestamp": str(now + 3600),
                    "type": "system",
                    "system": system,
                }
            ]
        ),  # fmt: skip
        reclassified(
            messages=[{**text_message("wamid.U.IN2", number, now + 9000), "from_user_id": bsuid}]
        ),  # fmt: skip
    ]
    store_deliveries(servers["database_url"], first)
    build("--full-refresh")
    before = {c for (c,) in db.execute("select contact_id from marts.business_contacts")}
    assert before == {"+447911000501", "+447911000502", bsuid}
    store_deliveries(servers["database_url"], links)
    build("--vars", "{incremental_lookback_hours: 0}")
    incremental = mart_snapshot(db)
    contacts = {c for (c,) in db.execute("select contact_id from marts.business_contacts")}
    assert contacts == {"+447911000501", bsuid}
    # The new number's message is in the conversation the old number's opened: one each.
    assert db.execute("select count(*) from marts.conversations").fetchone()[0] == 2
    build("--full-refresh")
    assert mart_snapshot(db) == incremental
