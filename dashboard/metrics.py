"""Each metric as one query on the marts. Medians and percentiles are taken over the detail
marts (``responses``, ``message_delivery``) for the whole period asked, never averaged from
daily figures, so any date range gives the true median."""

from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from dashboard.period import Period

FOR_NUMBER = "(%(number)s::text is null or business_phone_number_id = %(number)s)"

RESPONSE_FIGURES = """
    count(*) as responses,
    percentile_cont(0.5) within group (order by response_seconds) as median_response_seconds,
    percentile_cont(0.9) within group (order by response_seconds) as p90_response_seconds,
    count(*) filter (where is_first_response) as first_responses,
    percentile_cont(0.5) within group (order by response_seconds)
        filter (where is_first_response) as median_first_response_seconds,
    percentile_cont(0.9) within group (order by response_seconds)
        filter (where is_first_response) as p90_first_response_seconds
"""
IN_PERIOD = "between %(start)s and %(end)s"

RESPONSE_TIMES = f"""
select activity_date, {RESPONSE_FIGURES}
from marts.responses
where activity_date {IN_PERIOD} and {FOR_NUMBER}
group by activity_date
order by activity_date
"""

RESPONSE_TOTALS = f"""
select {RESPONSE_FIGURES}
from marts.responses
where activity_date {IN_PERIOD} and {FOR_NUMBER}
"""

# A contact is new on the first day they wrote (to the number asked, or to any number).
FIRST_SEEN = f"""
first_seen as (
    select contact_id, min(first_seen_date) as first_seen_date
    from marts.business_contacts
    where {FOR_NUMBER}
    group by contact_id
)
"""

CONTACT_GROWTH = f"""
with
{FIRST_SEEN},
days as (
    select day::date as activity_date
    from generate_series(%(start)s::date, %(end)s::date, interval '1 day') as days (day)
),
new_per_day as (
    select first_seen_date as activity_date, count(*) as new_contacts
    from first_seen
    where first_seen_date {IN_PERIOD}
    group by first_seen_date
),
known_before as (
    select count(*) as contacts from first_seen where first_seen_date < %(start)s
)
select
    days.activity_date,
    coalesce(new_per_day.new_contacts, 0) as new_contacts,
    known_before.contacts + sum(coalesce(new_per_day.new_contacts, 0)) over (
        order by days.activity_date
    ) as cumulative_contacts
from days
cross join known_before
left join new_per_day on days.activity_date = new_per_day.activity_date
order by days.activity_date
"""

NEW_CONTACTS = f"""
with {FIRST_SEEN}
select count(*) as new_contacts from first_seen where first_seen_date {IN_PERIOD}
"""

PEAK_HOURS = f"""
select
    weekdays.day_of_week,
    hours.hour_of_day,
    coalesce(sum(traffic.messages_received), 0) as messages_received
from generate_series(1, 7) as weekdays (day_of_week)
cross join generate_series(0, 23) as hours (hour_of_day)
left join marts.inbound_traffic_hourly as traffic
    on traffic.day_of_week = weekdays.day_of_week
    and traffic.hour_of_day = hours.hour_of_day
    and traffic.activity_date {IN_PERIOD}
    and {FOR_NUMBER}
group by weekdays.day_of_week, hours.hour_of_day
order by weekdays.day_of_week, hours.hour_of_day
"""

DELIVERY_FIGURES = """
    count(*) as messages_sent,
    count(*) filter (where is_delivered) as messages_delivered,
    count(*) filter (where is_read) as messages_read,
    count(*) filter (where is_failed) as messages_failed,
    count(*) filter (where is_delivered)::double precision / nullif(count(*), 0)
        as delivery_rate,
    count(*) filter (where is_read)::double precision
        / nullif(count(*) filter (where is_delivered), 0) as read_rate,
    percentile_cont(0.5) within group (order by seconds_to_deliver)
        as median_seconds_to_deliver,
    percentile_cont(0.5) within group (order by seconds_to_read) as median_seconds_to_read
"""

DELIVERY_TOTALS = f"""
select {DELIVERY_FIGURES}
from marts.message_delivery
where sent_date {IN_PERIOD} and {FOR_NUMBER}
"""

DELIVERY_DAILY = f"""
select sent_date as activity_date, {DELIVERY_FIGURES}
from marts.message_delivery
where sent_date {IN_PERIOD} and {FOR_NUMBER}
group by sent_date
order by sent_date
"""

AGENTS = f"""
with
answered as (
    select
        agent_id,
        {RESPONSE_FIGURES},
        count(distinct conversation_id) as conversations_handled
    from marts.responses
    -- An agent's period is when they answered, as in agent_performance_daily.
    where responded_date {IN_PERIOD} and {FOR_NUMBER}
    group by agent_id
),
sent as (
    select
        agent_id,
        count(*) as messages_sent,
        count(*) filter (where is_read)::double precision
            / nullif(count(*) filter (where is_delivered), 0) as read_rate
    from marts.message_delivery
    where sent_date {IN_PERIOD} and {FOR_NUMBER}
    group by agent_id
)
select
    -- As agent_performance_daily names them: replies whose agent the CRM did not report.
    coalesce(answered.agent_id, sent.agent_id, 'unattributed') as agent_id,
    coalesce(answered.responses, 0) as responses,
    coalesce(answered.first_responses, 0) as first_responses,
    coalesce(answered.conversations_handled, 0) as conversations_handled,
    answered.median_response_seconds,
    answered.p90_response_seconds,
    answered.median_first_response_seconds,
    coalesce(sent.messages_sent, 0) as messages_sent,
    sent.read_rate
from answered
-- Replies without a reported agent are one row (a null key would never match itself).
full outer join sent on coalesce(answered.agent_id, '') = coalesce(sent.agent_id, '')
order by responses desc, messages_sent desc, agent_id
"""

BUSINESS_NUMBERS = """
select business_phone_number_id as business_number, sum(messages_received) as messages_received
from marts.inbound_traffic_hourly
where business_phone_number_id is not null
group by business_phone_number_id
order by messages_received desc, business_number
"""


def rows(conn: psycopg.Connection, query: str, period: Period | None = None) -> list[dict]:
    """The query's rows as JSON-ready dicts (dates as ISO strings, decimals as numbers)."""
    with conn.cursor(row_factory=dict_row) as cursor:
        cursor.execute(query, period.params() if period else None)
        return [{key: _json_value(value) for key, value in row.items()} for row in cursor]


def one(conn: psycopg.Connection, query: str, period: Period) -> dict:
    return rows(conn, query, period)[0]


def _json_value(value):
    if isinstance(value, Decimal):
        return int(value) if value == value.to_integral_value() else float(value)
    if hasattr(value, "isoformat"):
        return value.isoformat()
    return value


def summary(conn: psycopg.Connection, period: Period) -> dict:
    """The headline figures of ``period`` beside those of the period just before it."""

    def figures(part: Period) -> dict:
        responses = one(conn, RESPONSE_TOTALS, part)
        delivery = one(conn, DELIVERY_TOTALS, part)
        return {
            "median_first_response_seconds": responses["median_first_response_seconds"],
            "responses": responses["responses"],
            "new_contacts": one(conn, NEW_CONTACTS, part)["new_contacts"],
            "delivery_rate": delivery["delivery_rate"],
            "read_rate": delivery["read_rate"],
        }

    previous = period.previous()
    now, before = figures(period), figures(previous)
    return {
        "previous_period": {"start": previous.start.isoformat(), "end": previous.end.isoformat()},
        "figures": {
            name: {"value": value, "previous": before[name], "change": _change(value, before[name])}
            for name, value in now.items()
        },
    }


def _change(value, previous) -> float | None:
    """Relative change against the previous period; none when either side is unknown or 0."""
    if value is None or not previous:
        return None
    return (value - previous) / previous
