"""Rows no build should trip on: hostile values written straight into raw.events (as older data
or a future bug would put them there, around the worker's limits). Full and incremental builds
succeed, the good rows reach the marts with the right figures, the unusable rows are in the audit
model with their reasons, and dbt warns with their count."""

import random
import re
import string
import uuid
from datetime import UTC, datetime, timedelta

from helpers import mart_snapshot
from psycopg.types.json import Jsonb

from wa_analytics.core import limits
from wa_analytics.core.dbt import PROJECT_ROOT, run_dbt

NOW = datetime.now(UTC).replace(microsecond=0)
T = NOW - timedelta(hours=3)
BUSINESS = "106540352242922"
AGENT = "agent-1"
RNG = random.Random(18)


def noise(length: int) -> str:
    """Text that does not compress: too long for an index row once past about 2,700 bytes."""
    return "".join(RNG.choices(string.ascii_letters + string.digits, k=length))


LONG_AGENT = noise(10_000)
LONG_MESSAGE_ID = "wamid." + "A" * 10_000  # compressible: raw.events' own index takes it
LONG_BUSINESS = noise(5_000)
LONG_CONVERSATION = noise(5_000)
LONG_USER = "+" + noise(300)


def insert(db, event_name, user_id, message_id, occurred_at, source="whatsapp", status=None,
           **properties) -> str:  # fmt: skip
    """One raw.events row, written as it is (no worker, no limits); returns its event_id."""
    event_id = str(uuid.uuid4())
    direction = "inbound" if event_name == "message_received" else "outbound"
    db.execute(
        "insert into raw.events (event_id, event_name, channel_type, user_id, message_id,"
        " status, occurred_at, received_at, source, delivery_id, properties)"
        " values (%s, %s, 'whatsapp', %s, %s, %s, %s, %s, %s, %s, %s)",
        (event_id, event_name, user_id, message_id, status, occurred_at, NOW, source,
         uuid.uuid4(), Jsonb({"direction": direction, **properties})),
    )  # fmt: skip
    return event_id


def at(seconds: int) -> datetime:
    return T + timedelta(seconds=seconds)


def build_output(*args: str) -> str:
    """``dbt build``, which must succeed whatever raw.events holds; its output."""
    result = run_dbt(["build", *args], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-6000:]
    return result.stdout


def warned_count(output: str, test: str) -> int:
    """The count dbt warned with for ``test`` ("Got N results, configured to warn if != 0")."""
    found = re.search(rf"Warning in test {test} \(.*?\n.*?Got (\d+) results?", output)
    assert found, f"no warning for {test} in:\n{output[-4000:]}"
    return int(found.group(1))


def first_batch(db) -> dict[str, object]:
    """Good traffic with hostile values among it; returns the ids the test looks up."""
    ids = {}
    # Good: a contact writes, an agent answers a minute later, Meta reports it read.
    insert(db, "message_received", "+16315550001", "wamid.GOOD.IN", at(0),
           business_phone_number_id=BUSINESS, message_type="text", content_length=12,
           has_media=False)  # fmt: skip
    insert(db, "message_sent", "+16315550001", "wamid.GOOD.OUT", at(60), "crm", agent_id=AGENT,
           content_length=20, has_media=False)  # fmt: skip
    for offset, name in ((61, "sent"), (70, "delivered"), (90, "read")):
        insert(db, "status_updated", "+16315550001", "wamid.GOOD.OUT", at(offset), status=name,
               business_phone_number_id=BUSINESS, pricing_category="service",
               pricing_model="CBP", is_billable=True)  # fmt: skip

    # An answer whose agent id is 10,000 characters: it counts, unattributed.
    insert(db, "message_received", "+16315550002", "wamid.AGENT.IN", at(100))
    ids["long_agent"] = insert(db, "message_sent", "+16315550002", "wamid.AGENT.OUT", at(130),
                               "crm", agent_id=LONG_AGENT)  # fmt: skip

    # Failures whose error code cannot be an integer code: they count, under -1 (none given).
    codes = {"3000000000": 3_000_000_000, "minus": -5, "abc": "abc", "fraction": 1.5,
             "object": {"code": 131026}}  # fmt: skip
    billable = {"3000000000": 1, "minus": "no", "abc": "true"}
    for name, code in codes.items():
        extra = {"is_billable": billable[name]} if name in billable else {}
        ids[f"code_{name}"] = insert(
            db, "status_updated", "+16315550003", f"wamid.FAIL.{name}", at(200), status="failed",
            error_code=code, error_title="Message undeliverable", **extra,
        )  # fmt: skip
    ids["long_conversation"] = insert(
        db, "status_updated", "+16315550003", "wamid.FAIL.good", at(200), status="failed",
        error_code=131026, error_title="Message undeliverable", conversation_id=LONG_CONVERSATION,
    )  # fmt: skip

    # Inbound messages with numbers and booleans of the wrong kind, and a 5,000-character
    # business number: they count.
    ids["huge_length"] = insert(db, "message_received", "+16315550004", "wamid.LEN.huge", at(300),
                                content_length=10**30, has_media="yes")  # fmt: skip
    ids["text_length"] = insert(db, "message_received", "+16315550004", "wamid.LEN.text", at(301),
                                content_length="lots", has_media=1)  # fmt: skip
    ids["negative_length"] = insert(db, "message_received", "+16315550004", "wamid.LEN.neg",
                                    at(302), content_length=-5)  # fmt: skip
    ids["long_business"] = insert(db, "message_received", "+16315550005", "wamid.BIZ", at(400),
                                  business_phone_number_id=LONG_BUSINESS)  # fmt: skip

    # One message, two spellings of one number: the CRM's and Meta's. One row, Meta's contact.
    insert(db, "message_received", "+5511999990001", "wamid.TWO.IN", at(500), "crm")
    insert(db, "message_sent", "+5511999990001", "wamid.TWO", at(530), "crm", agent_id=AGENT)
    insert(db, "status_updated", "+551199990001", "wamid.TWO", at(535), status="delivered")

    # Left out: keys too long for an index, times that cannot be.
    ids["long_message_id"] = insert(db, "message_received", "+16315550006", LONG_MESSAGE_ID,
                                    at(600))  # fmt: skip
    ids["long_user"] = insert(db, "message_received", LONG_USER, "wamid.LONG.USER", at(600))
    for name, moment in (("year_1", "0001-01-01 00:00:00+00"),
                         ("year_9999", "9999-12-31 23:59:59+00"),
                         ("infinity", "infinity"), ("minus_infinity", "-infinity")):  # fmt: skip
        ids[f"time_{name}"] = insert(db, "message_received", "+16315550007",
                                     f"wamid.TIME.{name}", moment)  # fmt: skip
    return ids


EXCLUDED = {
    "long_message_id": "message_id longer than 256 characters",
    "long_user": "user_id longer than 256 characters",
    "time_year_1": "occurred_at before 2009-01-01 00:00:00+00",
    "time_minus_infinity": "occurred_at before 2009-01-01 00:00:00+00",
    "time_year_9999": "occurred_at more than 1 day later than received_at or now",
    "time_infinity": "occurred_at more than 1 day later than received_at or now",
}
NOT_AN_ID = "not a string or number of at most 256 characters"
NOT_AN_INTEGER = "not an integer from 0 to 2147483647"
COUNTED = {
    "long_agent": f"agent_id {NOT_AN_ID}",
    "long_conversation": f"conversation_id {NOT_AN_ID}",
    "long_business": f"business_phone_number_id {NOT_AN_ID}",
    "code_3000000000": f"error_code {NOT_AN_INTEGER}; is_billable not true or false",
    "code_minus": f"error_code {NOT_AN_INTEGER}; is_billable not true or false",
    "code_abc": f"error_code {NOT_AN_INTEGER}",
    "code_fraction": f"error_code {NOT_AN_INTEGER}",
    "code_object": f"error_code {NOT_AN_INTEGER}",
    "huge_length": f"content_length {NOT_AN_INTEGER}; has_media not true or false",
    "text_length": f"content_length {NOT_AN_INTEGER}; has_media not true or false",
    "negative_length": f"content_length {NOT_AN_INTEGER}",
}


def test_hostile_rows_never_fail_a_build(servers, db):
    ids = first_batch(db)
    output = build_output("--full-refresh")

    # dbt warns with the counts, and the audit model says which rows and why.
    assert warned_count(output, "events_left_out_of_the_marts") == len(EXCLUDED)
    assert warned_count(output, "events_counted_with_values_left_out") == len(COUNTED)
    audit = {
        event_id: (reason, is_excluded)
        for event_id, reason, is_excluded in db.execute(
            "select event_id::text, reason, is_excluded from audit.excluded_events"
        )
    }
    expected = {ids[name]: (reason, True) for name, reason in EXCLUDED.items()}
    expected |= {ids[name]: (reason, False) for name, reason in COUNTED.items()}
    assert audit == expected
    longest = db.execute(
        "select max(length(message_id)), max(length(contact_id)) from audit.excluded_events"
    ).fetchone()
    assert longest == (256, 256)

    # The good rows, with the right figures.
    response = db.execute(
        "select contact_id, agent_id, response_seconds, business_phone_number_id"
        " from marts.responses where response_message_id = 'wamid.GOOD.OUT'"
    ).fetchone()
    assert response == ("+16315550001", AGENT, 60.0, BUSINESS)
    delivery = db.execute(
        "select delivery_status, seconds_to_deliver, seconds_to_read, is_billable"
        " from marts.message_delivery where message_id = 'wamid.GOOD.OUT'"
    ).fetchone()
    assert delivery == ("read", 10.0, 30.0, True)
    # The answer with the unusable agent counts, unattributed.
    agents = dict(
        db.execute("select agent_id, sum(responses) from marts.agent_performance_daily group by 1")
    )
    assert agents == {AGENT: 1, "unattributed": 1}
    # Every failure counts; the unusable codes as none given (-1). 'true' reads as true.
    failures = dict(
        db.execute("select error_code, sum(failures) from marts.delivery_failures_daily group by 1")
    )
    assert failures == {-1: 5, 131026: 1}
    billable = dict(
        db.execute(
            "select message_id, is_billable from marts.message_delivery"
            " where message_id like 'wamid.FAIL.%'"
        )
    )
    assert billable == {
        "wamid.FAIL.3000000000": None,
        "wamid.FAIL.minus": None,
        "wamid.FAIL.abc": True,
        "wamid.FAIL.fraction": None,
        "wamid.FAIL.object": None,
        "wamid.FAIL.good": None,
    }
    # Unusable lengths and media flags are unknown, not 0 or false.
    staged = dict(
        db.execute(
            "select message_id, (content_length, has_media)::text"
            " from staging.stg_whatsapp__messages where message_id like 'wamid.LEN.%'"
        )
    )
    assert staged == {"wamid.LEN.huge": "(,)", "wamid.LEN.text": "(,)", "wamid.LEN.neg": "(,f)"}
    # The long business number is left out, its message counted.
    numbers = dict(
        db.execute(
            "select coalesce(business_phone_number_id, 'none'), sum(messages_received)"
            " from marts.inbound_traffic_hourly group by 1"
        )
    )
    assert numbers == {BUSINESS: 1, "none": 6}
    # One message, one contact: Meta's spelling.
    two = db.execute(
        "select contact_id, agent_id, delivery_status from marts.message_delivery"
        " where message_id = 'wamid.TWO'"
    ).fetchall()
    assert two == [("+551199990001", AGENT, "delivered")]
    # Nothing from the excluded rows: no message, no contact, no day from year 1 or 9999.
    days = db.execute(
        "select min(activity_date), max(activity_date), sum(new_contacts)"
        " from marts.contact_growth_daily"
    ).fetchone()
    assert days[0] >= T.date() - timedelta(days=1) and days[1] <= NOW.date() + timedelta(days=1)
    assert days[2] == 5  # the contacts who wrote in, one of them in the CRM's spelling
    for column, table in (("message_id", "int_messages_unioned"),
                          ("contact_id", "int_messages_unioned")):  # fmt: skip
        longest = db.execute(f"select max(length({column})) from intermediate.{table}").fetchone()
        assert longest[0] <= limits.MAX_ID_LENGTH, column


def test_incremental_builds_survive_hostile_rows_and_equal_a_full_refresh(servers, db):
    first_batch(db)
    build_output("--full-refresh")

    # A second batch: new hostile rows, a message that moves to Meta's spelling of its contact,
    # and good traffic.
    insert(db, "message_received", "+16315550001", "wamid.GOOD.IN2", at(3600),
           business_phone_number_id=BUSINESS)  # fmt: skip
    insert(db, "message_sent", "+16315550001", "wamid.GOOD.OUT2", at(3630), "crm",
           agent_id=LONG_AGENT)  # fmt: skip
    insert(db, "status_updated", "+16315550003", "wamid.FAIL.later", at(3700), status="failed",
           error_code=99_999_999_999)  # fmt: skip
    insert(db, "status_updated", "+551199990001", "wamid.TWO", at(3700), status="read",
           is_billable="maybe")  # fmt: skip
    insert(db, "message_received", "+5511988880001", "wamid.MOVE.IN", at(3800), "crm")
    insert(db, "message_sent", "+5511988880001", "wamid.MOVE", at(3810), "crm", agent_id=AGENT)
    insert(db, "message_received", "+16315550008", "wamid.TIME.later", "infinity")
    insert(db, "message_received", "+16315550008", "wamid." + "B" * 10_000, at(3900))
    output = build_output()
    assert warned_count(output, "events_left_out_of_the_marts") == len(EXCLUDED) + 2

    insert(db, "status_updated", "+551188880001", "wamid.MOVE", at(3815), status="delivered")
    output = build_output("--vars", "{incremental_lookback_hours: 0}")
    compiled = PROJECT_ROOT / "target/run/wa_analytics/dbt_project/models/marts/responses.sql"
    assert "delete from" in compiled.read_text()  # it really was an incremental run
    incremental = mart_snapshot(db)

    build_output("--full-refresh")
    full = mart_snapshot(db)
    assert set(incremental) == set(full)
    for mart in full:
        assert incremental[mart] == full[mart], mart
    moved = db.execute(
        "select contact_id from marts.message_delivery where message_id = 'wamid.MOVE'"
    ).fetchall()
    assert moved == [("+551188880001",)]
    failures = dict(
        db.execute("select error_code, sum(failures) from marts.delivery_failures_daily group by 1")
    )
    assert failures == {-1: 6, 131026: 1}
