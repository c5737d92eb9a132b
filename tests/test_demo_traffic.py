"""The demo's traffic generator covers the cases the marts must get right, and the reference
metrics used by the end-to-end tests follow the definitions on hand-made cases."""

from datetime import UTC, datetime, timedelta

import orjson
from reference_metrics import (
    answered_waits,
    contact_growth_daily,
    hourly_traffic,
    percentile_cont,
    response_times_daily,
)

from wa_analytics.demo.traffic import (
    CRM_PATH,
    WHATSAPP_PATH,
    Truth,
    TruthMessage,
    generate_traffic,
)

START = datetime(2026, 11, 16, tzinfo=UTC)


def test_the_same_arguments_give_the_same_traffic():
    first = generate_traffic(seed=3, contacts=40, days=3, start=START)
    again = generate_traffic(seed=3, contacts=40, days=3, start=START)
    assert [d.body for d in first.deliveries] == [d.body for d in again.deliveries]
    assert first.truth == again.truth


def test_the_traffic_holds_every_case_the_marts_must_handle():
    traffic = generate_traffic(seed=11, contacts=80, days=4, start=START)
    bodies = [orjson.loads(d.body) for d in traffic.deliveries]
    meta = [b for d, b in zip(traffic.deliveries, bodies, strict=True) if d.path == WHATSAPP_PATH]
    crm = [b for d, b in zip(traffic.deliveries, bodies, strict=True) if d.path == CRM_PATH]
    assert all(b["object"] == "whatsapp_business_account" for b in meta)
    types = {
        m["type"]
        for b in meta
        for e in b["entry"]
        for c in e["changes"]
        for m in c["value"].get("messages", [])
    }
    assert types >= {"text", "image", "audio", "video", "document", "sticker", "location",
                     "contacts", "interactive", "button", "reaction", "unsupported"}  # fmt: skip
    assert any(len(c["value"].get("messages", []) + c["value"].get("statuses", [])) > 1
               for b in meta for e in b["entry"] for c in e["changes"])  # fmt: skip
    assert {b["event"] for b in crm} == {
        "whatsapp.message.received", "whatsapp.message.sent", "whatsapp.status.updated"
    }  # fmt: skip
    assert len({d.body for d in traffic.deliveries}) < len(traffic.deliveries)  # retries
    assert traffic.stats["late_deliveries"] > 0 and traffic.stats["quarantined_items"] > 0
    statuses = {s.status for s in traffic.truth.statuses}
    assert statuses == {"sent", "delivered", "read", "failed"}
    waits = answered_waits(traffic.truth)
    assert any(since == responded for _, since, responded in waits)  # same-second replies
    outbound = [m for m in traffic.truth.messages if m.direction == "outbound"]
    assert any(m.agent_id is None for m in outbound)  # known only from statuses, or templates
    assert len(outbound) > len(waits)  # proactive sends and follow-ups answer nothing


def _message(message_id, contact, direction, minutes, agent=None):
    at = START + timedelta(minutes=minutes)
    return TruthMessage(message_id, contact, direction, at, agent)


def test_reference_pairing_follows_the_definitions():
    truth = Truth(
        messages=[
            _message("t", "A", "outbound", 0),  # proactive: answers nothing
            _message("i1", "A", "inbound", 10),
            _message("i2", "A", "inbound", 11),  # same wait
            _message("o1", "A", "outbound", 15),
            _message("o2", "A", "outbound", 16),  # follow-up: no open wait
            _message("o3", "A", "outbound", 30),
            _message("i3", "A", "inbound", 30),  # same instant: inbound first, 0 s
            _message("i4", "B", "inbound", 40),  # open wait
        ]
    )
    assert [(c, (r - s).total_seconds()) for c, s, r in answered_waits(truth)] == [
        ("A", 300.0),
        ("A", 0.0),
    ]
    [row] = response_times_daily(truth, "UTC")
    assert row["responses"] == 2 and row["median_response_seconds"] == 150.0


def test_reference_days_follow_the_reporting_timezone():
    late_evening = Truth(messages=[_message("i", "A", "inbound", -60)])  # 23:00 UTC on the 15th
    assert hourly_traffic(late_evening, "Asia/Kolkata")[0]["activity_date"].day == 16
    assert hourly_traffic(late_evening, "UTC")[0]["activity_date"].day == 15
    assert hourly_traffic(late_evening, "UTC")[0]["day_of_week"] == 7


def test_reference_growth_is_zero_filled():
    truth = Truth(messages=[_message("a", "A", "inbound", 0),
                            _message("b", "B", "inbound", 3 * 24 * 60)])  # fmt: skip
    rows = contact_growth_daily(truth, "UTC")
    assert [r["new_contacts"] for r in rows] == [1, 0, 0, 1]
    assert [r["growth_rate"] for r in rows] == [None, 0.0, 0.0, 1.0]


def test_percentile_cont_interpolates():
    assert percentile_cont([10, 20, 60], 0.9) == 52
    assert percentile_cont([5], 0.5) == 5
