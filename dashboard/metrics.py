"""Each metric as one query on the marts. Medians and percentiles are taken over the whole
period asked, never averaged from daily figures, so any date range gives the true median: from
the distributions by day (how many responses or messages had each time), exactly as
``percentile_cont`` computes them over the responses and messages themselves."""

from decimal import Decimal

import psycopg
from psycopg.rows import dict_row

from dashboard.period import Period

FOR_NUMBER = "(%(number)s::text is null or business_phone_number_id = %(number)s)"

IN_PERIOD = "between %(start)s and %(end)s"


def _percentile(fraction: float, cumulative: str, total: str) -> str:
    """percentile_cont(``fraction``) over a distribution's rows (``value``, with ``cumulative``
    the count of values up to it, of ``total``), exactly as Postgres computes it over the
    values themselves: the values at ranks floor and ceil of fraction x (total - 1), and
    between them linearly. Null when there is no value."""
    rank = f"{fraction} * ({total} - 1)::double precision"

    def value_at(bound: str) -> str:
        return f"min(value) filter (where {cumulative} > {bound}({rank}))"

    lower, upper = value_at("floor"), value_at("ceil")
    rank_of_group = rank.replace(total, f"max({total})")
    return (
        f"case when max({total}) > 0 then {lower} + ({upper} - {lower})"
        f" * ({rank_of_group} - floor({rank_of_group})) end"
    )


# The period's figures from the distribution of response times: equal to those over the
# responses themselves.
RESPONSE_TOTALS = f"""
with
distribution as (
    select is_first_response, response_seconds as value, sum(responses) as responses
    from marts.response_time_distribution_daily
    where activity_date {IN_PERIOD} and {FOR_NUMBER}
    group by is_first_response, response_seconds
),
cumulative as (
    select
        value,
        sum(responses) over (order by value) as upto,
        sum(responses) over () as total,
        coalesce(sum(responses) filter (where is_first_response) over (order by value), 0)
            as first_upto,
        coalesce(sum(responses) filter (where is_first_response) over (), 0) as first_total
    from distribution
)
select
    coalesce(max(total), 0)::bigint as responses,
    {_percentile(0.5, "upto", "total")} as median_response_seconds,
    {_percentile(0.9, "upto", "total")} as p90_response_seconds,
    coalesce(max(first_total), 0)::bigint as first_responses,
    {_percentile(0.5, "first_upto", "first_total")} as median_first_response_seconds,
    {_percentile(0.9, "first_upto", "first_total")} as p90_first_response_seconds
from cumulative
"""

# Each day's own figures, as dbt computed them over that day's responses.
RESPONSE_TIMES = f"""
with
figures_per_day as (
    select
        activity_date, responses, median_response_seconds, p90_response_seconds,
        first_responses, median_first_response_seconds, p90_first_response_seconds
    from marts.response_times_daily
    where %(number)s::text is null
    union all
    select
        activity_date, responses, median_response_seconds, p90_response_seconds,
        first_responses, median_first_response_seconds, p90_first_response_seconds
    from marts.response_times_by_number_daily
    where business_phone_number_id = %(number)s
)
select *
from figures_per_day
where activity_date {IN_PERIOD}
order by activity_date
"""

# A contact is new on the first day they wrote (to the number asked, or to any number): per day
# from the marts that count them at each build, never by grouping business_contacts per request.
NEW_CONTACTS_PER_DAY = """
new_contacts_per_day as (
    select activity_date, new_contacts
    from marts.contact_growth_daily
    where %(number)s::text is null
    union all
    select first_seen_date as activity_date, new_contacts
    from marts.new_contacts_by_number_daily
    where business_phone_number_id = %(number)s
)
"""

CONTACT_GROWTH = f"""
with
{NEW_CONTACTS_PER_DAY},
days as (
    select day::date as activity_date
    from generate_series(%(start)s::date, %(end)s::date, interval '1 day') as days (day)
),
known_before as (
    select coalesce(sum(new_contacts), 0)::bigint as contacts
    from new_contacts_per_day
    where activity_date < %(start)s
)
select
    days.activity_date,
    coalesce(new_contacts_per_day.new_contacts, 0) as new_contacts,
    known_before.contacts + sum(coalesce(new_contacts_per_day.new_contacts, 0)) over (
        order by days.activity_date
    ) as cumulative_contacts
from days
cross join known_before
left join new_contacts_per_day on days.activity_date = new_contacts_per_day.activity_date
order by days.activity_date
"""

NEW_CONTACTS = f"""
with {NEW_CONTACTS_PER_DAY}
select coalesce(sum(new_contacts), 0)::bigint as new_contacts
from new_contacts_per_day
where activity_date {IN_PERIOD}
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


def _delivery_figures(by_day: bool) -> str:
    """The delivery figures of the period (or of each day it), from the distribution of the
    messages' outcomes and times, equal to those over message_delivery itself."""
    key = "sent_date, " if by_day else ""
    within = "partition by sent_date " if by_day else ""
    group = "group by sent_date" if by_day else ""

    def median_of(column: str) -> str:
        return f"""
{column}_values as (
    select {key}{column} as value, sum(messages) as messages
    from distribution
    where {column} is not null
    group by {key}{column}
),
{column}_median as (
    select {key}{_percentile(0.5, "upto", "total")} as median_{column}
    from (
        select
            {key}value,
            sum(messages) over ({within}order by value) as upto,
            sum(messages) over ({within.strip()}) as total
        from {column}_values
    ) as cumulative
    {group}
)"""

    joins = (
        "left join seconds_to_deliver_median using (sent_date)"
        " left join seconds_to_read_median using (sent_date)"
        if by_day
        else "cross join seconds_to_deliver_median cross join seconds_to_read_median"
    )
    return f"""
with
distribution as (
    select {key}is_delivered, is_read, is_failed, seconds_to_deliver, seconds_to_read, messages
    from marts.delivery_distribution_daily
    where sent_date {IN_PERIOD} and {FOR_NUMBER}
),
counts as (
    select
        {key}coalesce(sum(messages), 0)::bigint as sent,
        coalesce(sum(messages) filter (where is_delivered), 0)::bigint as delivered,
        coalesce(sum(messages) filter (where is_read), 0)::bigint as read,
        coalesce(sum(messages) filter (where is_failed), 0)::bigint as failed
    from distribution
    {group}
),
{median_of("seconds_to_deliver")},
{median_of("seconds_to_read")}
select
    {"sent_date as activity_date, " if by_day else ""}sent as messages_sent,
    delivered as messages_delivered,
    read as messages_read,
    failed as messages_failed,
    delivered::double precision / nullif(sent, 0) as delivery_rate,
    read::double precision / nullif(delivered, 0) as read_rate,
    median_seconds_to_deliver,
    median_seconds_to_read
from counts
{joins}
{"order by sent_date" if by_day else ""}
"""


DELIVERY_TOTALS = _delivery_figures(by_day=False)
DELIVERY_DAILY = _delivery_figures(by_day=True)

# Each agent's figures over the period, from the marts that count them by day: responses and
# their exact percentiles from the distribution of response times, the conversations handled
# from the days each was answered in, the messages sent.
AGENTS = f"""
with
distribution as (
    select agent_id, is_first_response, response_seconds as value, sum(responses) as responses
    from marts.agent_response_time_distribution_daily
    -- An agent's period is when they answered, as in agent_performance_daily.
    where responded_date {IN_PERIOD} and {FOR_NUMBER}
    group by agent_id, is_first_response, response_seconds
),
cumulative as (
    select
        agent_id,
        value,
        sum(responses) over (partition by agent_id order by value) as upto,
        sum(responses) over (partition by agent_id) as total,
        coalesce(
            sum(responses) filter (where is_first_response) over (
                partition by agent_id order by value
            ),
            0
        ) as first_upto,
        coalesce(
            sum(responses) filter (where is_first_response) over (partition by agent_id), 0
        ) as first_total
    from distribution
),
response_figures as (
    select
        agent_id,
        max(total)::bigint as responses,
        max(first_total)::bigint as first_responses,
        {_percentile(0.5, "upto", "total")} as median_response_seconds,
        {_percentile(0.9, "upto", "total")} as p90_response_seconds,
        {_percentile(0.5, "first_upto", "first_total")} as median_first_response_seconds
    from cumulative
    group by agent_id
),
handled as (
    -- Each conversation once: on its first day in the period.
    select agent_id, sum(conversations)::bigint as conversations_handled
    from marts.agent_conversations_daily
    where
        responded_date {IN_PERIOD}
        and (
            %(number)s::text is null and (previous_date is null or previous_date < %(start)s)
            or business_phone_number_id = %(number)s
            and (previous_date_for_number is null or previous_date_for_number < %(start)s)
        )
    group by agent_id
),
answered as (
    select
        response_figures.*,
        coalesce(handled.conversations_handled, 0) as conversations_handled
    from response_figures
    left join handled on response_figures.agent_id is not distinct from handled.agent_id
),
sent as (
    select
        agent_id,
        sum(messages_sent)::bigint as messages_sent,
        sum(messages_read)::double precision / nullif(sum(messages_delivered), 0) as read_rate
    from marts.agent_messages_daily
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
