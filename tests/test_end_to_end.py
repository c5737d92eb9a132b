"""The whole product as users meet it: signed HTTP webhooks to a real gunicorn service, real RQ
worker processes, Postgres, then ``dbt build``; the marts must match an independent reference
implementation of the metric definitions, in UTC and in non-UTC reporting time zones."""

import os
import socket
import subprocess
import sys
import time
import urllib.request
from collections import Counter, defaultdict
from datetime import UTC, datetime
from decimal import Decimal
from zoneinfo import ZoneInfo

import pytest
import redis
from helpers import TEST_SECRETS
from reference_metrics import (
    ad_conversations,
    contact_growth_daily,
    funnel,
    hourly_traffic,
    messaging_costs,
    opening_seconds,
    response_times_daily,
    sla_attainment_daily,
    template_sends,
)

from wa_analytics.core.dbt import run_dbt
from wa_analytics.core.queueing import pending
from wa_analytics.demo.sender import send_all
from wa_analytics.demo.traffic import generate_traffic

MARTS = {
    "response_times_daily": (
        response_times_daily,
        ["activity_date", "responses", "avg_response_seconds", "median_response_seconds",
         "p90_response_seconds"],
    ),
    "contact_growth_daily": (
        contact_growth_daily,
        ["activity_date", "new_contacts", "cumulative_contacts", "growth_rate"],
    ),
    "hourly_traffic": (
        hourly_traffic,
        ["activity_date", "hour_of_day", "day_of_week", "messages_received"],
    ),
}  # fmt: skip


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _cli(*args) -> subprocess.Popen:
    """A command as an operator runs it: with the default settings the tests' own override."""
    env = {k: v for k, v in os.environ.items() if k != "WA_DRAIN_LINGER_SECONDS"}
    return subprocess.Popen(
        [sys.executable, "-m", "wa_analytics.cli", "--log-level", "WARNING", *args], env=env
    )


def _wait_ready(url: str, timeout: float = 30) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        try:
            with urllib.request.urlopen(url, timeout=1) as response:
                if response.status == 200:
                    return
        except OSError:
            time.sleep(0.1)
    raise AssertionError(f"{url} did not become ready")


def _wait_drained(redis_url: str, timeout: float = 120) -> None:
    conn = redis.Redis.from_url(redis_url)
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if not pending(conn):
            return
        time.sleep(0.1)
    raise AssertionError("workers did not drain the queue")


@pytest.fixture(scope="module")
def demo_traffic():
    return generate_traffic(seed=11, contacts=80, days=4)


@pytest.fixture
def loaded(servers, db, redis_conn, demo_traffic):
    """The demo's traffic sent through `wa-analytics serve` and two `wa-analytics worker`s."""
    port = _free_port()
    processes = [
        _cli("serve", "--port", str(port), "--workers", "2"),
        _cli("worker"),
        _cli("worker"),
    ]
    try:
        _wait_ready(f"http://127.0.0.1:{port}/readyz")
        report = send_all(
            f"http://127.0.0.1:{port}",
            demo_traffic.deliveries,
            whatsapp_secret=TEST_SECRETS["WHATSAPP_APP_SECRET"],
            crm_secret=TEST_SECRETS["CRM_WEBHOOK_SECRET"],
        )
        _wait_drained(servers["redis_url"])
    finally:
        for process in processes:
            process.terminate()
        for process in processes:
            process.wait(timeout=30)
    return report


def _mart_rows(db, name, columns):
    rows = db.execute(f"select {', '.join(columns)} from marts.{name} order by 1, 2").fetchall()
    return [dict(zip(columns, row, strict=True)) for row in rows]


def _normalise(rows, columns):
    """Compare numbers to 6 decimal places: SQL numerics and Python floats round differently."""
    out = []
    for row in rows:
        out.append(
            {
                c: round(float(row[c]), 6) if isinstance(row[c], float | Decimal) else row[c]
                for c in columns
            }
        )
    return sorted(out, key=lambda r: [str(r[c]) for c in columns[:2]])


def test_every_acknowledged_delivery_is_stored_once(loaded, db, demo_traffic):
    assert set(loaded.status_counts) == {200}
    events = db.execute(
        "select count(*) filter (where event_name <> 'status_updated'),"
        " count(*) filter (where event_name = 'status_updated') from raw.events"
    ).fetchone()
    distinct_deliveries = len({d.body for d in demo_traffic.deliveries})
    assert db.execute("select count(*) from raw.deliveries").fetchone()[0] == distinct_deliveries
    assert db.execute("select count(*) from raw.quarantine").fetchone()[0] > 0
    truth_statuses = {(s.message_id, s.status) for s in demo_traffic.truth.statuses}
    assert events[1] == len(truth_statuses)
    # Every inbound message is one row, whether live or backfilled (Meta's system messages,
    # such as a number change, are no one's message).
    inbound = [m for m in demo_traffic.truth.messages if m.direction == "inbound"]
    stored_inbound = db.execute(
        "select count(*) from raw.events where event_name = 'message_received'"
        " and properties ->> 'message_type' <> 'system'"
    ).fetchone()[0]
    assert stored_inbound == len(inbound)


@pytest.mark.parametrize("timezone", ["UTC", "America/Sao_Paulo", "Asia/Kolkata"])
def test_marts_match_the_definitions(loaded, db, demo_traffic, timezone):
    result = run_dbt(
        # A new reporting_timezone changes every day of every contact: a full refresh.
        ["build", "--full-refresh", "--vars", f"{{reporting_timezone: {timezone}}}"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    for name, (reference, columns) in MARTS.items():
        expected = reference(demo_traffic.truth, timezone)
        actual = _mart_rows(db, name, columns)
        assert actual, f"{name} is empty"
        assert _normalise(actual, columns) == _normalise(expected, columns), name


def test_delivery_marts_match_the_statuses_sent(loaded, db, demo_traffic):
    result = run_dbt(["build", "--full-refresh"], check=False, capture_output=True, text=True)
    assert result.returncode == 0, result.stdout[-4000:]
    statuses = defaultdict(set)
    for s in demo_traffic.truth.statuses:
        statuses[s.message_id].add(s.status)
    # A history backfill's past messages are not in the delivery figures.
    outbound = [
        m for m in demo_traffic.truth.messages if m.direction == "outbound" and not m.is_backfill
    ]
    expected = Counter(
        "read" if "read" in statuses[m.message_id]
        else "delivered" if "delivered" in statuses[m.message_id]
        else "failed" if "failed" in statuses[m.message_id]
        else "sent"
        for m in outbound
    )  # fmt: skip
    actual = dict(
        db.execute("select delivery_status, count(*) from marts.message_delivery group by 1")
    )
    assert actual == dict(expected)
    sent_at = dict(db.execute("select message_id, sent_at from marts.message_delivery"))
    assert all(sent_at[m.message_id] == m.occurred_at for m in outbound)
    totals = db.execute(
        "select sum(messages_sent), sum(messages_failed) from marts.delivery_daily"
    ).fetchone()
    assert totals == (len(outbound), expected["failed"])


SLA_COUNTS = ["answered_within_target", "answered_late", "first_responses",
              "first_responses_within_target", "first_responses_under_1m",
              "first_responses_1_to_5m", "first_responses_5_to_15m", "first_responses_15_to_60m",
              "first_responses_over_60m"]  # fmt: skip


@pytest.mark.parametrize("timezone", ["UTC", "America/Sao_Paulo"])
def test_contacts_and_sla_match_the_definitions(loaded, db, demo_traffic, timezone):
    """One contact per person, under the id they were first seen with, across number changes,
    business-scoped ids and Meta's spellings; and the SLA marts as an independent reading of
    the definitions computes them from the truth (open waits judged at the build)."""
    before = datetime.now(UTC)
    result = run_dbt(
        ["build", "--full-refresh", "--vars", f"{{reporting_timezone: {timezone}}}"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    after = datetime.now(UTC)
    assert result.returncode == 0, result.stdout[-4000:]
    people = {m.user_id for m in demo_traffic.truth.messages if m.direction == "inbound"}
    contacts = {c for (c,) in db.execute("select distinct contact_id from marts.business_contacts")}
    assert contacts == people
    assert demo_traffic.stats["number_changes"] > 0 and demo_traffic.stats["business_app_replies"]

    early = sla_attainment_daily(demo_traffic.truth, timezone, before)
    late = sla_attainment_daily(demo_traffic.truth, timezone, after)
    rows = db.execute(
        f"select activity_date, {', '.join(SLA_COUNTS)}, open_past_target, open_within_target,"
        " breached, attainment_rate from marts.sla_attainment_daily"
    ).fetchall()
    assert {row[0] for row in rows} == set(early)
    for row in rows:
        day, figures = row[0], dict(zip(SLA_COUNTS, row[1:], strict=False))
        assert figures == {name: early[day][name] for name in SLA_COUNTS}, day
        # A wait may cross its target between the two readings of the clock.
        open_past = row[len(SLA_COUNTS) + 1]
        assert early[day]["open_past_target"] <= open_past <= late[day]["open_past_target"]
        assert open_past + row[len(SLA_COUNTS) + 2] == (
            early[day]["open_past_target"] + early[day]["open_within_target"]
        )
    # Each answered breach is late by what the definitions say, in opening seconds.
    breaches = db.execute(
        "select waiting_since, responded_at, business_seconds, target_seconds, seconds_late"
        " from marts.sla_breaches where not is_open"
    ).fetchall()
    assert breaches
    for since, responded, seconds, target, late_by in breaches:
        assert seconds == pytest.approx(opening_seconds(since, responded, timezone))
        assert late_by == pytest.approx(seconds - target) and late_by > 0


FUNNEL = ["messages_sent", "messages_delivered", "messages_read", "messages_failed",
          "messages_replied", "messages_clicked", "opt_outs", "resumes",
          "median_seconds_to_read", "median_seconds_to_reply"]  # fmt: skip


def _rounded(figures: dict) -> dict:
    return {k: round(float(v), 6) if isinstance(v, float | Decimal) else v
            for k, v in figures.items()}  # fmt: skip


def test_costs_campaigns_and_ads_match_the_definitions(loaded, db, demo_traffic):
    """What WhatsApp cost, what each template and campaign brought and what each ad brought, as
    an independent reading of the definitions computes them from the truth, in a time zone
    whose local days are not UTC's."""
    timezone = "America/Sao_Paulo"
    result = run_dbt(
        ["build", "--full-refresh", "--vars", f"{{reporting_timezone: {timezone}}}"],
        check=False, capture_output=True, text=True,
    )  # fmt: skip
    assert result.returncode == 0, result.stdout[-4000:]
    zone = ZoneInfo(timezone)
    truth = demo_traffic.truth

    costs = db.execute(
        "select activity_date, pricing_category, pricing_type, market, sum(messages_charged),"
        " sum(messages_free), sum(estimated_cost), sum(estimated_savings)"
        " from marts.messaging_costs_daily group by 1, 2, 3, 4"
    ).fetchall()
    expected = messaging_costs(truth, timezone)
    assert {row[:4]: [int(row[4]), int(row[5]), row[6], row[7]] for row in costs} == {
        key: figures for key, figures in expected.items()
    }
    assert {row[2] for row in costs} >= {"regular", "free_customer_service", "free_entry_point"}
    assert sum(row[6] for row in costs) > 0

    sends = template_sends(truth)
    per_template, per_campaign = defaultdict(list), defaultdict(list)
    for send in sends:
        message = send["message"]
        day = message.occurred_at.astimezone(zone).date()
        per_template[(day, *message.template)].append(send)
        if message.campaign:
            per_campaign[message.campaign[0]].append(send)
    rows = db.execute(
        f"select activity_date, template_name, template_language, template_category,"
        f" {', '.join(FUNNEL)} from marts.template_performance_daily"
    ).fetchall()
    assert {row[:4]: _rounded(dict(zip(FUNNEL, row[4:], strict=True))) for row in rows} == {
        key: _rounded(funnel(group)) for key, group in per_template.items()
    }
    rows = db.execute(f"select campaign_id, {', '.join(FUNNEL)} from marts.campaign_funnel")
    actual = {row[0]: _rounded(dict(zip(FUNNEL, row[1:], strict=True))) for row in rows}
    assert actual == {key: _rounded(funnel(group)) for key, group in per_campaign.items()}
    assert sum(f["messages_clicked"] for f in actual.values()) > 0
    assert sum(f["opt_outs"] for f in actual.values()) > 0
    assert sum(f["messages_failed"] for f in actual.values()) > 0

    columns = ["contact_id", "source_id", "opened_at", "is_new_contact", "is_answered",
               "first_response_seconds", "outbound_messages", "free_entry_point_messages"]  # fmt: skip
    rows = db.execute(f"select {', '.join(columns)} from marts.ad_conversations").fetchall()
    conversations = ad_conversations(truth)
    assert sorted(rows, key=str) == sorted(
        (tuple(c[k] for k in columns) for c in conversations), key=str
    )
    assert any(c["is_new_contact"] for c in conversations)
    assert any(not c["is_new_contact"] for c in conversations)
    assert any(c["free_entry_point_messages"] for c in conversations)
    per_ad = defaultdict(Counter)
    for c in conversations:
        figures = per_ad[(c["opened_at"].astimezone(zone).date(), c["source_id"])]
        figures.update(conversations=1, new_contacts=c["is_new_contact"],
                       conversations_answered=c["is_answered"],
                       outbound_messages=c["outbound_messages"],
                       free_entry_point_messages=c["free_entry_point_messages"])  # fmt: skip
    names = ["conversations", "new_contacts", "conversations_answered", "outbound_messages",
             "free_entry_point_messages"]  # fmt: skip
    rows = db.execute(
        f"select activity_date, source_id, {', '.join(names)} from marts.ad_performance_daily"
    ).fetchall()
    assert {row[:2]: dict(zip(names, row[2:], strict=True)) for row in rows} == {
        key: {name: figures[name] for name in names} for key, figures in per_ad.items()
    }
