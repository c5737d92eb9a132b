"""From a signed HTTP POST to rows in raw.events, through Redis and a real RQ worker."""

import threading
import time
import uuid

import orjson
import pytest
from helpers import cloud_api_delivery, crm_event, run_worker, signed_post, status, text_message

from wa_analytics.bench.workload import campaign
from wa_analytics.core import database
from wa_analytics.core.queueing import (
    BUFFER_KEY,
    DRAIN_FLAG,
    PROCESSING_PREFIX,
    SEALED_KEY,
    SEGMENT_COUNTER,
    SEGMENT_PREFIX,
    DeliveryQueue,
    Envelope,
    delivery_id_for,
    drain_queue,
    oldest_waiting,
    pending,
    push,
    waiting,
)
from worker import jobs, store
from worker.failures import failed_jobs, requeue_failed
from worker.jobs import drain_deliveries
from worker.parsing.event import EVENT_NAMESPACE
from worker.processing import build_batch
from worker.reprocess import reprocess
from worker.store import write_batch

NOW = int(time.time())
WA_ID = "16315551234"


def count(db, table="raw.events", where="true", params=()):
    return db.execute(f"select count(*) from {table} where {where}", params).fetchone()[0]


def three_messages_two_statuses():
    return cloud_api_delivery(
        messages=[
            text_message("wamid.IN1", WA_ID, NOW - 300, "Hi! Do you deliver on Sundays?"),
            text_message("wamid.IN2", WA_ID, NOW - 290, "To Brooklyn"),
            text_message("wamid.IN3", "447400900123", NOW - 200, "Hello from London"),
        ],
        statuses=[
            status("wamid.OUT1", WA_ID, NOW - 100, "delivered"),
            status("wamid.OUT1", WA_ID, NOW - 50, "read"),
        ],
    )


def test_a_batched_delivery_gives_five_rows_and_a_retry_adds_none(client, db, redis_conn, settings):
    delivery = three_messages_two_statuses()
    assert signed_post(client, "/webhooks/whatsapp", delivery).status_code == 200
    assert run_worker(redis_conn, settings)
    assert count(db) == 5
    assert count(db, where="event_name = 'message_received'") == 3
    assert count(db, where="event_name = 'status_updated'") == 2
    assert count(db, "raw.deliveries") == 1

    assert signed_post(client, "/webhooks/whatsapp", delivery).status_code == 200
    run_worker(redis_conn, settings)
    assert count(db) == 5
    assert count(db, "raw.deliveries") == 1

    assert signed_post(client, "/webhooks/whatsapp", delivery, secret="wrong").status_code == 401
    assert redis_conn.llen(BUFFER_KEY) == 0
    assert count(db) == 5


def test_a_wrong_signature_stores_nothing(client, db, redis_conn, settings):
    response = signed_post(client, "/webhooks/whatsapp", three_messages_two_statuses(), secret="x")
    assert response.status_code == 401
    run_worker(redis_conn, settings)
    assert count(db) == 0 and count(db, "raw.deliveries") == 0


def test_rows_carry_the_standardised_event(client, db, redis_conn, settings):
    signed_post(client, "/webhooks/whatsapp", three_messages_two_statuses())
    run_worker(redis_conn, settings)
    row = db.execute(
        "select event_name, channel_type, user_id, occurred_at, received_at, properties"
        " from raw.events where message_id = 'wamid.IN1'"
    ).fetchone()
    event_name, channel, user_id, occurred_at, received_at, props = row
    assert (event_name, channel, user_id) == ("message_received", "whatsapp", "+16315551234")
    assert occurred_at.timestamp() == NOW - 300
    assert abs(received_at.timestamp() - time.time()) < 30
    assert props["content_length"] == len("Hi! Do you deliver on Sundays?")
    assert props["direction"] == "inbound" and props["source"] == "whatsapp"
    assert count(db, where="user_id = '+447400900123'") == 1


def test_message_text_is_never_stored(client, db, redis_conn, settings):
    signed_post(client, "/webhooks/whatsapp", three_messages_two_statuses())
    crm = crm_event("whatsapp.message.sent", "wamid.OUT1", "+1 631-555-1234", NOW - 150,
                    agent={"id": "agent-7"})  # fmt: skip
    crm["message"]["text"] = "Yes, we deliver on Sundays until 6pm"
    signed_post(client, "/webhooks/crm", crm)
    bad = crm_event("whatsapp.message.received", "wamid.BAD", "12345", NOW - 100)
    bad["message"]["text"] = "Secret text in a quarantined item"
    signed_post(client, "/webhooks/crm", bad)
    run_worker(redis_conn, settings)
    everything = " ".join(
        str(row)
        for table in ("raw.events", "raw.deliveries", "raw.quarantine")
        for row in db.execute(f"select * from {table}").fetchall()
    )
    for text in (
        "Do you deliver",
        "Brooklyn",
        "Hello from London",
        "until 6pm",
        "Secret text",
        "Ana Souza",
    ):
        assert text not in everything


def test_crm_and_meta_reporting_the_same_facts_add_no_rows(client, db, redis_conn, settings):
    signed_post(client, "/webhooks/whatsapp", three_messages_two_statuses())
    same_inbound = crm_event(
        "whatsapp.message.received", "wamid.IN1", "+1 (631) 555-1234", NOW - 300
    )
    same_status = crm_event(
        "whatsapp.status.updated", "wamid.OUT1", "16315551234", NOW - 100, status="delivered"
    )
    sent = crm_event(
        "whatsapp.message.sent", "wamid.OUT1", "+1 631 555 1234", NOW - 150, agent={"id": "agent-7"}
    )
    for payload in (same_inbound, same_status, sent):
        assert signed_post(client, "/webhooks/crm", payload).status_code == 200
    run_worker(redis_conn, settings)
    assert count(db) == 6  # the five from Meta, plus the CRM's message_sent
    assert count(db, where="user_id = '+16315551234'") == 5
    assert (
        db.execute(
            "select properties->>'agent_id' from raw.events where event_name = 'message_sent'"
        ).fetchone()[0]
        == "agent-7"
    )


def test_out_of_order_duplicates_give_the_same_rows(client, db, redis_conn, settings):
    deliveries = [
        cloud_api_delivery(statuses=[status("wamid.O", WA_ID, NOW - 10, "read")]),
        cloud_api_delivery([text_message("wamid.I", WA_ID, NOW - 100)]),
        cloud_api_delivery(statuses=[status("wamid.O", WA_ID, NOW - 20, "delivered")]),
    ]
    for payload in deliveries + deliveries[::-1] + deliveries:
        signed_post(client, "/webhooks/whatsapp", payload)
    run_worker(redis_conn, settings)
    first = db.execute("select event_id, occurred_at from raw.events order by 1").fetchall()
    assert len(first) == 3
    db.execute("truncate raw.events, raw.deliveries, raw.quarantine")
    for payload in deliveries[::-1]:
        signed_post(client, "/webhooks/whatsapp", payload)
    run_worker(redis_conn, settings)
    assert db.execute("select event_id, occurred_at from raw.events order by 1").fetchall() == first


def test_authentic_items_that_cannot_be_parsed_are_quarantined(client, db, redis_conn, settings):
    delivery = cloud_api_delivery(
        messages=[
            text_message("wamid.OK", WA_ID, NOW - 10),
            text_message("wamid.BAD", "abc", NOW - 10),
        ],
        statuses=[status("wamid.O", WA_ID, NOW + 10 * 86400, "read")],
    )
    signed_post(client, "/webhooks/whatsapp", delivery)
    signed_post(
        client,
        "/webhooks/crm",
        crm_event("whatsapp.message.received", "wamid.C", "not-a-number", NOW),
    )
    signed_post(
        client, "/webhooks/whatsapp", {"object": "whatsapp_business_account", "entry": "oops"}
    )
    run_worker(redis_conn, settings)
    assert count(db) == 1
    reasons = db.execute("select item_path, reason from raw.quarantine order by reason").fetchall()
    assert len(reasons) == 4
    assert [path for path, _ in reasons] == [
        "$",
        "entry[0].changes[0].value.messages[1]",
        "$",
        "entry[0].changes[0].value.statuses[0]",
    ]
    assert "'entry' is missing" in reasons[0][1]
    assert "not all digits" in reasons[1][1]
    assert "phone number" in reasons[2][1]
    assert "implausible" in reasons[3][1]
    assert count(db, "raw.deliveries") == 3
    # A retried delivery quarantines nothing twice.
    signed_post(client, "/webhooks/whatsapp", delivery)
    run_worker(redis_conn, settings)
    assert count(db, "raw.quarantine") == 4


def test_many_deliveries_are_batched_into_few_jobs(client, db, redis_conn, settings):
    for i in range(300):
        payload = cloud_api_delivery([text_message(f"wamid.{i}", WA_ID, NOW - 1000 + i)])
        signed_post(client, "/webhooks/whatsapp", payload)
    from rq import Queue

    assert Queue(settings.queue_name, connection=redis_conn).count == 1
    run_worker(redis_conn, settings)
    assert count(db) == 300
    assert redis_conn.llen(BUFFER_KEY) == 0 and not redis_conn.exists(DRAIN_FLAG)


def test_a_delivery_pushed_after_the_last_batch_is_not_stranded(client, db, redis_conn, settings):
    signed_post(
        client, "/webhooks/whatsapp", cloud_api_delivery([text_message("wamid.1", WA_ID, NOW)])
    )
    run_worker(redis_conn, settings)
    # The flag was handed back, so the next delivery schedules a job of its own.
    signed_post(
        client, "/webhooks/whatsapp", cloud_api_delivery([text_message("wamid.2", WA_ID, NOW)])
    )
    run_worker(redis_conn, settings)
    assert count(db) == 2


def test_deliveries_claimed_by_a_job_that_died_are_recovered(db, redis_conn, settings):
    """A job killed mid-batch leaves its claim in Redis; once its lease lapses, the next drain
    takes the deliveries back."""
    body = orjson.dumps(cloud_api_delivery([text_message("wamid.Z", WA_ID, NOW)]))
    envelope = Envelope("00000000-0000-4000-8000-000000000001", "whatsapp", time.time(), body)
    redis_conn.rpush(PROCESSING_PREFIX + "dead-job", envelope.encode())
    drain_deliveries()
    assert count(db) == 1
    assert not redis_conn.exists(PROCESSING_PREFIX + "dead-job")


def test_a_failed_batch_goes_back_to_the_buffer(client, db, redis_conn, settings, monkeypatch):
    signed_post(
        client, "/webhooks/whatsapp", cloud_api_delivery([text_message("wamid.1", WA_ID, NOW)])
    )
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    run_worker(redis_conn, settings)  # the job fails: Postgres is unreachable
    assert redis_conn.llen(BUFFER_KEY) == 1
    monkeypatch.undo()
    drain_deliveries()
    assert count(db) == 1


def test_reprocess_re_derives_the_same_events(client, db, redis_conn, settings):
    signed_post(client, "/webhooks/whatsapp", three_messages_two_statuses())
    signed_post(
        client,
        "/webhooks/crm",
        crm_event(
            "whatsapp.message.sent", "wamid.OUT1", "+1 631 555 1234", NOW - 150, agent={"id": "a1"}
        ),
    )
    signed_post(
        client, "/webhooks/crm", crm_event("whatsapp.message.received", "wamid.C", "nope", NOW)
    )
    run_worker(redis_conn, settings)
    query = (
        "select event_id, event_name, user_id, occurred_at, properties from raw.events order by 1"
    )
    before = db.execute(query).fetchall()
    quarantined = count(db, "raw.quarantine")
    totals = reprocess(settings.database_url)
    assert totals == {"deliveries": 3, "events": 6, "quarantine": 1}
    assert db.execute(query).fetchall() == before
    assert count(db, "raw.quarantine") == quarantined


def test_reprocess_merges_one_event_reported_in_many_chunks(db, settings):
    """Reprocessing writes chunk after chunk in one transaction: an event that several
    deliveries report is merged once per chunk, never again with an earlier chunk's rows."""
    at = int(time.time()) - 3600
    bodies = [
        orjson.dumps(cloud_api_delivery(statuses=[
            status("wamid.E", WA_ID, at - number % 7, "read"),
            status(f"wamid.X{number}", WA_ID, at, "read"),
            *(status(f"wamid.G{other}", WA_ID, at - number, "delivered") for other in range(5)),
        ]))
        for number in range(40)
    ]  # fmt: skip
    with database.connect(settings.database_url) as conn:
        for number, body in enumerate(bodies):
            envelope = Envelope(
                delivery_id_for("whatsapp", body), "whatsapp", time.time() + number, body
            )
            write_batch(conn, build_batch([envelope]))
    query = "select event_id, delivery_id, occurred_at from raw.events order by 1"
    before = db.execute(query).fetchall()
    reprocess(settings.database_url, chunk=1)
    assert db.execute(query).fetchall() == before and len(before) == 46


def test_opt_in_pseudonymisation_stores_no_number(client, db, redis_conn, settings, monkeypatch):
    """With WA_PHONE_HASH_KEY set, every source's number becomes the same keyed hash, and no
    table holds the number, not even the stored delivery or a quarantined item."""
    monkeypatch.setenv("WA_PHONE_HASH_KEY", "a-secret-key")
    signed_post(client, "/webhooks/whatsapp", three_messages_two_statuses())
    sent = crm_event(
        "whatsapp.message.sent", "wamid.OUT1", "+1 (631) 555-1234", NOW - 150, agent={"id": "a1"}
    )
    signed_post(client, "/webhooks/crm", sent)
    signed_post(
        client,
        "/webhooks/crm",
        crm_event("whatsapp.message.received", "wamid.Q", "631-555-9876", NOW),
    )
    run_worker(redis_conn, settings)
    users = {row[0] for row in db.execute("select distinct user_id from raw.events")}
    assert len(users) == 2 and all(u.startswith("h:") and len(u) == 66 for u in users)
    assert (
        count(
            db,
            where="event_name = 'message_sent' and user_id = (select user_id from raw.events where message_id = 'wamid.IN1')",
        )
        == 1
    )
    everything = " ".join(
        str(row)
        for table in ("raw.events", "raw.deliveries", "raw.quarantine")
        for row in db.execute(f"select * from {table}").fetchall()
    )
    for number in ("16315551234", "6315551234", "447400900123", "555-9876", "5559876", "555-1234"):
        assert number not in everything
    [reason] = db.execute("select reason from raw.quarantine").fetchone()
    assert "no country code" in reason
    before = db.execute("select event_id, user_id from raw.events order by 1").fetchall()
    reprocess(settings.database_url)
    assert db.execute("select event_id, user_id from raw.events order by 1").fetchall() == before
    assert count(db, "raw.quarantine") == 1


def test_a_backlog_is_drained_by_helper_processes_exactly_once(db, redis_conn, monkeypatch):
    """A campaign's burst: the drain forks helpers; every event is stored once, nothing is left
    claimed, and retried deliveries and a status that both sources report add nothing."""
    monkeypatch.setenv("WA_BATCH_SIZE", "200")
    monkeypatch.setenv("WA_DRAIN_PROCESSES", "3")
    bodies = list(campaign(3000, seed=5))
    queue = DeliveryQueue(redis_conn, "unused-queue", 200)
    for body in bodies + bodies[:400]:
        queue.put("whatsapp", body)
    totals = drain_deliveries()
    assert count(db) == 3000 and count(db, "raw.deliveries") == 3000
    assert totals["events"] == 3000 and totals["batches"] >= 17 and totals["helpers"] == 2
    assert redis_conn.llen(BUFFER_KEY) == 0
    assert not list(redis_conn.scan_iter(match=PROCESSING_PREFIX + "*"))
    # Stored events carry the same ids a fresh uuid5 gives (ids are computed without uuid).
    row = db.execute("select event_id, event_name, message_id, status from raw.events limit 1")
    event_id, name, message_id, state = row.fetchone()
    assert event_id == uuid.uuid5(EVENT_NAMESPACE, f"{name}|{message_id}|{state or ''}")


def test_a_burst_is_sealed_into_batches_that_a_drain_claims_whole(db, redis_conn, monkeypatch):
    """A push that fills the open list to a batch seals it, never over a queued segment; a
    drain claims the oldest sealed batch with one RENAME. A claimed segment whose write fails
    goes back to the queue, and every delivery is stored once in the end."""
    monkeypatch.setenv("WA_BATCH_SIZE", "5")
    monkeypatch.setenv("WA_DRAIN_PROCESSES", "1")
    bodies = list(campaign(25, seed=8))
    queue = DeliveryQueue(redis_conn, "unused-queue", 5)
    ids = [queue.put("whatsapp", body) for body in bodies[:23]]
    assert redis_conn.llen(SEALED_KEY) == 4 and redis_conn.llen(BUFFER_KEY) == 3
    redis_conn.delete(SEGMENT_COUNTER)  # reset by hand: the next seal must not reuse a name
    for body in bodies[23:]:
        queue.put("whatsapp", body)
    assert redis_conn.llen(SEALED_KEY) == 5 and redis_conn.llen(BUFFER_KEY) == 0
    assert waiting(redis_conn) == 25
    assert Envelope.decode(oldest_waiting(redis_conn)).delivery_id == ids[0]

    db.execute("alter table raw.deliveries add constraint refuse_all check (false) not valid")
    db.commit()
    try:
        with pytest.raises(store.RowsRefused, match="23514") as refused:
            drain_deliveries()
        # In the server's words, without its DETAIL: the failing row, a phone number in it.
        assert "Failing row" not in str(refused.value) and "+" not in str(refused.value)
    finally:
        db.execute("alter table raw.deliveries drop constraint refuse_all")
        db.commit()
    assert waiting(redis_conn) == 25 and not list(redis_conn.scan_iter(PROCESSING_PREFIX + "*"))

    totals = drain_deliveries()
    # Four sealed segments, then the given-back batch from the open list: five claims.
    assert totals["batches"] == 5 and totals["events"] == count(db) == 25
    assert not pending(redis_conn) and not list(redis_conn.scan_iter(SEGMENT_PREFIX + "*"))


@pytest.mark.parametrize(
    ("failing", "call", "stored"), [("write_isolating", 2, 5), ("build_batch", 3, 10)]
)
def test_a_drain_failing_mid_way_keeps_what_it_stored_and_gives_back_the_rest(
    db, redis_conn, monkeypatch, failing, call, stored
):
    """A drain holds two batches at once (one parsed while the other is written). When the
    second write, or the third parse, fails: what was committed stays stored and acknowledged,
    the batches in hand go back to the queue, and a later drain stores the rest exactly once."""
    monkeypatch.setenv("WA_BATCH_SIZE", "5")
    monkeypatch.setenv("WA_DRAIN_PROCESSES", "1")
    queue = DeliveryQueue(redis_conn, "unused-queue", 5)
    for body in campaign(25, seed=9):
        queue.put("whatsapp", body)
    real, calls = getattr(jobs, failing), []

    def flaky(*args):
        calls.append(args)
        if len(calls) == call:
            raise RuntimeError("injected")
        return real(*args)

    monkeypatch.setattr(jobs, failing, flaky)
    with pytest.raises(RuntimeError, match="injected"):
        drain_deliveries()
    assert count(db) == count(db, "raw.deliveries") == stored
    assert waiting(redis_conn) == 25 - stored
    assert not list(redis_conn.scan_iter(PROCESSING_PREFIX + "*"))

    monkeypatch.setattr(jobs, failing, real)
    drain_deliveries()
    assert count(db) == count(db, "raw.deliveries") == 25 and not pending(redis_conn)


def test_under_steady_traffic_one_drain_serves_every_delivery(db, redis_conn, monkeypatch):
    """A drain that caught up holds the flag for WA_DRAIN_LINGER_SECONDS: deliveries arriving
    meanwhile schedule no job and are stored by the same drain, several to a batch; once no
    more come, it ends and frees the flag."""
    monkeypatch.setenv("WA_DRAIN_LINGER_SECONDS", "1")
    envelopes = [
        Envelope(delivery_id_for("whatsapp", body), "whatsapp", time.time(), body)
        for body in campaign(30, seed=12)
    ]
    assert push(redis_conn, envelopes[0], 2000)  # takes the flag
    totals = {}
    drain = threading.Thread(target=lambda: totals.update(drain_deliveries()))
    drain.start()
    for envelope in envelopes[1:]:
        time.sleep(0.02)
        assert push(redis_conn, envelope, 2000) is None  # the flag is held: no new job
    last_push = time.monotonic()
    drain.join(timeout=30)
    assert time.monotonic() - last_push >= 0.9  # it waited for more before ending
    assert totals["deliveries"] == count(db) == 30 and totals["batches"] < 30
    assert not redis_conn.exists(DRAIN_FLAG) and not pending(redis_conn)


def test_a_batch_racing_another_writer_takes_the_merge_path(db, settings):
    """Rows stored by someone else after the batch was built: the fast COPY is refused by the
    unique keys and the batch is merged instead, adding only what is new."""
    envelopes = [
        Envelope(delivery_id_for("whatsapp", body), "whatsapp", time.time(), body)
        for body in campaign(50, seed=9)
    ]
    batch = build_batch(envelopes)
    with database.connect(settings.database_url) as conn:
        assert write_batch(conn, build_batch(envelopes[:20]))["events"] == 20
        # Hide the stored rows from the pre-check, as a concurrent commit would.
        original = store._stored_keys
        store._stored_keys = lambda *args: set()
        try:
            added = write_batch(conn, batch)
        finally:
            store._stored_keys = original
    assert added == {"deliveries": 30, "events": 30, "quarantine": 0}
    assert count(db) == 50


def test_nul_characters_cannot_poison_a_batch(client, db, redis_conn, settings):
    """PostgreSQL cannot store NUL; a delivery holding one is stored with it replaced."""
    delivery = cloud_api_delivery([text_message("wamid.N\u0000UL", WA_ID, NOW, "a\u0000b")])
    signed_post(client, "/webhooks/whatsapp", delivery)
    signed_post(
        client, "/webhooks/whatsapp", cloud_api_delivery([text_message("wamid.OK", WA_ID, NOW)])
    )
    run_worker(redis_conn, settings)
    ids = {row[0] for row in db.execute("select message_id from raw.events")}
    assert ids == {"wamid.N\ufffdUL", "wamid.OK"}
    [length] = db.execute(
        "select properties->>'content_length' from raw.events where message_id <> 'wamid.OK'"
    ).fetchone()
    assert length == "3"


def test_a_status_delivery_is_kept_as_received(client, db, redis_conn, settings):
    delivery = cloud_api_delivery(statuses=[status("wamid.S", WA_ID, NOW, "read")])
    signed_post(client, "/webhooks/whatsapp", delivery)
    run_worker(redis_conn, settings)
    [body] = db.execute("select body from raw.deliveries").fetchone()
    assert body == delivery


def test_failed_drain_jobs_are_listed_and_requeued(client, db, redis_conn, settings, monkeypatch):
    """A drain that failed for good (no retries left) keeps nothing of its own: its batch went
    back to the buffer. The operator sees why it failed and runs it again once fixed."""
    signed_post(
        client, "/webhooks/whatsapp", cloud_api_delivery([text_message("wamid.F", WA_ID, NOW)])
    )
    redis_conn.delete(*redis_conn.keys("rq:queue:*"))  # drop the drain scheduled with retries
    drain_queue(redis_conn, settings.queue_name).enqueue("worker.jobs.drain_deliveries")
    monkeypatch.setenv("DATABASE_URL", "postgresql://nobody@127.0.0.1:1/none?connect_timeout=1")
    run_worker(redis_conn, settings)
    [job] = failed_jobs(redis_conn, settings.queue_name)
    assert "OperationalError" in job.reason
    assert redis_conn.llen(BUFFER_KEY) == 1 and count(db) == 0
    monkeypatch.undo()
    assert requeue_failed(redis_conn, settings.queue_name) == 1
    run_worker(redis_conn, settings)
    assert count(db) == 1 and failed_jobs(redis_conn, settings.queue_name) == []
