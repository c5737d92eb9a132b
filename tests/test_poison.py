"""Poison isolation (RELIABILITY.md): whatever fails for one delivery fails it alone.

Each test queues good deliveries before and after the offender in one batch, drains them with a
real worker, and checks that the good ones are stored, the offender is kept (in raw.deliveries
with its items quarantined, or as a dead letter that `wa-analytics failed` lists) and that no
drain job failed.
"""

import os
import subprocess
import sys
import time

import orjson
import pytest
from helpers import cloud_api_delivery, crm_event, run_worker, signed_post, status, text_message

from wa_analytics.core.limits import MAX_ID_LENGTH
from wa_analytics.core.queueing import DEAD_LETTERS_KEY, DeliveryQueue, pending
from worker import processing
from worker.dead_letters import dead_letters, requeue_dead_letters
from worker.failures import failed_jobs
from worker.reprocess import reprocess

NOW = int(time.time())
WA, CRM = "/webhooks/whatsapp", "/webhooks/crm"


def good(number: int) -> dict:
    return cloud_api_delivery([text_message(f"wamid.GOOD{number}", "16315551234", NOW - number)])


def count(db, sql: str, *params) -> int:
    return db.execute(sql, params).fetchone()[0]


def send_around(client, path: str, poison, goods: int = 3) -> None:
    """Good deliveries, the poison, good deliveries again: all queued for one drain."""
    for number in range(goods):
        assert signed_post(client, WA, good(number)).status_code == 200
    assert signed_post(client, path, poison).status_code == 200
    for number in range(goods, 2 * goods):
        assert signed_post(client, WA, good(number)).status_code == 200


def assert_goods_stored(db, redis_conn, settings, goods: int = 6) -> None:
    stored = count(db, "select count(*) from raw.events where message_id like 'wamid.GOOD%%'")
    assert stored == goods
    assert not pending(redis_conn), "a delivery is still queued or claimed"
    assert failed_jobs(redis_conn, settings.queue_name) == []


# (name, path, payload, words of the quarantine reason): authentic deliveries the worker once
# failed on with an error other than a parse error, holding back everything queued behind them.
FOUND_POISONS = [
    ("an ISO time whose offset moves it before year 1", CRM,
     crm_event("whatsapp.message.received", "wamid.P", "+16315551234",
               "0001-01-01T00:30:00+01:00"), "out of range"),
    ("a message id too long for an index row", WA,
     cloud_api_delivery([text_message("wamid." + "x" * 3000, "16315551234", NOW)]),
     f"longer than {MAX_ID_LENGTH}"),
    ("an agent id of 10,000 characters", CRM,
     crm_event("whatsapp.message.sent", "wamid.P", "+16315551234", NOW,
               agent={"id": "a" * 10_000}), f"longer than {MAX_ID_LENGTH}"),
    ("an error code beyond PostgreSQL's integer", CRM,
     crm_event("whatsapp.status.updated", "wamid.P", "+16315551234", NOW, status="failed",
               error={"code": 3_000_000_000, "title": "x"}), "outside"),
    ("a negative error code", WA,
     cloud_api_delivery(statuses=[status("wamid.P", "16315551234", NOW, "failed",
                                         errors=[{"code": -1, "title": "x"}])]), "outside"),
    ("a business number id of 5,000 characters", WA,
     cloud_api_delivery([text_message("wamid.P", "16315551234", NOW)],
                        metadata={"phone_number_id": "9" * 5000, "display_phone_number": "1"}),
     f"longer than {MAX_ID_LENGTH}"),
    ("a conversation id that is a large object", WA,
     cloud_api_delivery(statuses=[status("wamid.P", "16315551234", NOW) | {
         "conversation": {"id": {"k": "v" * 2000}}}]), f"longer than {MAX_ID_LENGTH}"),
    ("an error title of 5,000 characters", WA,
     cloud_api_delivery(statuses=[status("wamid.P", "16315551234", NOW, "failed",
                                         errors=[{"code": 1, "title": "t" * 5000}])]),
     "longer than 1024"),
]  # fmt: skip


@pytest.mark.parametrize(
    ("path", "poison", "reason"),
    [case[1:] for case in FOUND_POISONS],
    ids=[case[0] for case in FOUND_POISONS],
)
def test_a_value_beyond_the_contract_quarantines_its_item_alone(
    client, db, redis_conn, settings, path, poison, reason
):
    send_around(client, path, poison)
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings)
    reasons = [row[0] for row in db.execute("select reason from raw.quarantine")]
    assert len(reasons) == 1 and reason in reasons[0], reasons
    assert count(db, "select count(*) from raw.deliveries") == 7


@pytest.mark.parametrize(
    "error",
    [KeyError("k"), TypeError("t"), RecursionError(), MemoryError(), UnicodeError("u"),
     OverflowError("o"), AttributeError("a"), ZeroDivisionError(), AssertionError()],
    ids=lambda error: type(error).__name__,
)  # fmt: skip
def test_any_exception_in_parsing_fails_its_delivery_alone(
    client, db, redis_conn, settings, monkeypatch, error
):
    """Isolation by construction, not by a list of known inputs: a parser bug of any class,
    met by one delivery, quarantines that delivery (kept redacted, for `reprocess` after the
    fix) with where it failed; never the exception's words, which may quote the text."""
    real = processing.derive

    def derive(source, payload, *args):
        if source == "crm":
            raise error
        return real(source, payload, *args)

    monkeypatch.setattr(processing, "derive", derive)
    secret = "Call me at home, it's urgent"
    send_around(client, CRM, crm_event("whatsapp.message.received", "wamid.P", "+16315551234",
                                       NOW, message={"id": "wamid.P", "text": secret}))  # fmt: skip
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings)
    (reason,) = [row[0] for row in db.execute("select reason from raw.quarantine")]
    assert type(error).__name__ in reason and "derive" in reason
    kept = db.execute("select body::text from raw.deliveries where source = 'crm'").fetchone()[0]
    assert secret not in kept and "redacted_length" in kept

    monkeypatch.setattr(processing, "derive", real)  # the fix: reprocess derives its event
    reprocess(settings.database_url)
    assert count(db, "select count(*) from raw.events where message_id = 'wamid.P'") == 1
    assert count(db, "select count(*) from raw.quarantine") == 0


def test_a_delivery_whose_redaction_fails_becomes_a_dead_letter(
    client, db, redis_conn, settings, monkeypatch
):
    """Nothing can be stored of it without its text: it is kept as queued, in Redis, with the
    reason, until requeued after a fix; the deliveries around it are stored."""
    real = processing.redact_crm

    def broken(payload):
        raise ValueError("a bug")

    monkeypatch.setattr(processing, "redact_crm", broken)
    send_around(client, CRM, crm_event("whatsapp.message.received", "wamid.P", "+16315551234", NOW))
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings)
    (letter,) = dead_letters(redis_conn)
    assert letter.source == "crm" and "ValueError" in letter.reason and "broken" in letter.reason
    assert count(db, "select count(*) from raw.deliveries where source = 'crm'") == 0

    monkeypatch.setattr(processing, "redact_crm", real)
    assert requeue_dead_letters(redis_conn, settings.queue_name, settings.batch_size) == 1
    assert "0 dead letters" in failed_command()
    assert run_worker(redis_conn, settings)
    assert count(db, "select count(*) from raw.events where message_id = 'wamid.P'") == 1
    assert not redis_conn.exists(DEAD_LETTERS_KEY)


def test_json_deeper_than_the_worker_can_write_is_a_dead_letter(db, redis_conn, settings):
    """Queued by a door from before the nesting limit: orjson writes at most 254 levels, so
    neither the delivery nor a quarantined item can be kept."""
    queue = DeliveryQueue(redis_conn, settings.queue_name, settings.batch_size)
    queue.put("whatsapp", orjson.dumps(good(0)))
    deep = b'{"object":"whatsapp_business_account","entry":' + b"[" * 300 + b"]" * 300 + b"}"
    queue.put("whatsapp", deep)
    queue.put("whatsapp", orjson.dumps(good(1)))
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings, goods=2)
    (letter,) = dead_letters(redis_conn)
    assert letter.body_bytes == len(deep) and "TypeError in stored_form" in letter.reason


@pytest.fixture
def refusing(db):
    """A trigger that makes PostgreSQL refuse some rows: ``refusing(table, condition)``."""
    made = []

    def refuse(table: str, condition: str) -> None:
        name = f"refuse_{table}"
        db.execute(
            f"create function raw.{name}() returns trigger language plpgsql as $$ begin"
            f" if {condition} then raise exception 'refused by a test' using errcode = '22023';"
            " end if; return new; end $$"
        )
        db.execute(
            f"create trigger {name} before insert on raw.{table}"
            f" for each row execute function raw.{name}()"
        )
        made.append((table, name))

    yield refuse
    for table, name in made:
        db.execute(f"drop trigger {name} on raw.{table}")
        db.execute(f"drop function raw.{name}()")


def test_rows_postgres_refuses_fail_their_delivery_alone(
    client, db, redis_conn, settings, refusing
):
    """The batch is split until the refused delivery is alone: it is kept with its events
    quarantined and the server's reason; the 40 deliveries around it are stored."""
    refusing("events", "new.message_id = 'wamid.P'")
    send_around(client, WA, cloud_api_delivery([text_message("wamid.P", "16315551234", NOW)]), 20)
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings, goods=40)
    assert count(db, "select count(*) from raw.deliveries") == 41
    (reason, path, item) = db.execute(
        "select reason, item_path, item from raw.quarantine"
    ).fetchone()
    assert "PostgreSQL refused" in reason and "22023 refused by a test" in reason
    assert path == "events[0]" and item["message_id"] == "wamid.P"


def test_a_delivery_postgres_refuses_even_quarantined_is_a_dead_letter(
    client, db, redis_conn, settings, refusing
):
    refusing("deliveries", "new.body::text like '%%wamid.P%%'")
    send_around(client, CRM, crm_event("whatsapp.message.received", "wamid.P", "+16315551234", NOW))
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings)
    (letter,) = dead_letters(redis_conn)
    assert "refused by a test" in letter.reason and "then its quarantine" in letter.reason
    listed = failed_command()
    assert "1 dead letters" in listed and letter.delivery_id in listed and "refused" in listed


def failed_command(*args: str) -> str:
    """`wa-analytics failed` as an operator runs it."""
    run = subprocess.run(
        [sys.executable, "-m", "wa_analytics.cli", "failed", *args],
        env=os.environ, capture_output=True, text=True, timeout=60, check=True,
    )  # fmt: skip
    return run.stdout


def test_a_database_that_refuses_every_row_gives_the_batch_back(
    client, db, redis_conn, settings, refusing
):
    """Not the deliveries' fault (the known-good canary is refused too): nothing is
    quarantined or dead-lettered, the batch waits in the queue and the job fails for a retry."""
    refusing("events", "true")
    send_around(client, WA, good(99))
    run_worker(redis_conn, settings)  # the job fails, and is scheduled to run again
    assert count(db, "select count(*) from raw.deliveries") == 0
    assert count(db, "select count(*) from raw.quarantine") == 0
    assert not redis_conn.exists(DEAD_LETTERS_KEY) and pending(redis_conn)


def test_reprocess_quarantines_what_postgres_refuses_alone(
    client, db, redis_conn, settings, refusing
):
    send_around(client, WA, cloud_api_delivery([text_message("wamid.P", "16315551234", NOW)]))
    assert run_worker(redis_conn, settings)
    refusing("events", "new.message_id = 'wamid.P'")
    reprocess(settings.database_url)
    assert count(db, "select count(*) from raw.events where message_id like 'wamid.GOOD%%'") == 6
    (reason,) = [row[0] for row in db.execute("select reason from raw.quarantine")]
    assert "PostgreSQL refused" in reason


def test_a_report_kept_over_another_deliverys_is_replaced_if_its_delivery_is_refused(
    client, db, redis_conn, settings, refusing
):
    """Meta and the CRM report one status in one batch; Meta's report is kept (it comes first),
    but Meta's delivery is refused for another of its items: the CRM's report is stored."""
    refusing("events", "new.message_id = 'wamid.P'")
    crm = crm_event("whatsapp.status.updated", "wamid.E", "+16315551234", NOW, status="delivered")
    meta = cloud_api_delivery(
        [text_message("wamid.P", "16315551234", NOW)],
        [status("wamid.E", "16315551234", NOW, "delivered")],
    )
    assert signed_post(client, CRM, crm).status_code == 200
    send_around(client, WA, meta)
    assert run_worker(redis_conn, settings)
    assert_goods_stored(db, redis_conn, settings)
    stored = db.execute("select source from raw.events where message_id = 'wamid.E'").fetchall()
    assert stored == [("crm",)]
    assert count(db, "select count(*) from raw.quarantine") == 2  # Meta's two events
