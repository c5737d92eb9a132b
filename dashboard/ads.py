"""What click-to-WhatsApp ads brought (marts ad_performance_daily and ad_conversations) as
queries: per ad and in total, the sums of the daily counts over the period asked, the answer
rate from those sums, and the median first response over the period's conversations themselves
(never a median of daily medians). No contact is named: the figures are counts."""

from dashboard.metrics import FOR_NUMBER, IN_PERIOD

COUNTS = [
    "conversations",
    "new_contacts",
    "returning_contacts",
    "conversations_answered",
    "outbound_messages",
    "free_entry_point_messages",
]
_SUMS = ",\n    ".join(f"coalesce(sum({name}), 0)::bigint as {name}" for name in COUNTS)
_ANSWER_RATE = "sum(conversations_answered)::double precision / nullif(sum(conversations), 0)"
_DAILY = f"""
from marts.ad_performance_daily
where activity_date {IN_PERIOD} and {FOR_NUMBER}
"""
_CONVERSATIONS = f"""
from marts.ad_conversations
where opened_date {IN_PERIOD} and {FOR_NUMBER}
"""
_MEDIAN = "percentile_cont(0.5) within group (order by first_response_seconds)"

TOTALS = f"""
select
    {_SUMS},
    {_ANSWER_RATE} as answer_rate,
    (select {_MEDIAN} {_CONVERSATIONS}) as median_first_response_seconds
{_DAILY}
"""

# Each ad (source_id) with its headline, link and type as its latest conversation in the period
# shows them, as ad_performance_daily does per day.
ADS = f"""
with
figures as (
    select
        source_id,
        {_SUMS},
        {_ANSWER_RATE} as answer_rate
    {_DAILY}
    group by source_id
),
medians as (
    select source_id, {_MEDIAN} as median_first_response_seconds
    {_CONVERSATIONS}
    group by source_id
),
latest as (
    select distinct on (source_id) source_id, source_type, headline, source_url
    {_CONVERSATIONS}
    order by source_id, opened_at desc, conversation_id
)
select
    figures.source_id,
    latest.source_type,
    latest.headline,
    latest.source_url,
    {", ".join(f"figures.{name}" for name in COUNTS)},
    figures.answer_rate,
    medians.median_first_response_seconds
from figures
left join medians on figures.source_id = medians.source_id
left join latest on figures.source_id = latest.source_id
order by figures.conversations desc, figures.source_id
"""

# Each day's conversations, in total and per ad ({source_id: conversations}).
DAYS = f"""
with
per_ad as (
    select
        activity_date,
        source_id,
        {_SUMS}
    {_DAILY}
    group by activity_date, source_id
)
select
    activity_date,
    sum(conversations)::bigint as conversations,
    sum(new_contacts)::bigint as new_contacts,
    sum(returning_contacts)::bigint as returning_contacts,
    sum(conversations_answered)::bigint as conversations_answered,
    jsonb_object_agg(source_id, conversations) as conversations_by_ad
from per_ad
group by activity_date
order by activity_date
"""

QUIET_DAY = {
    "conversations": 0,
    "new_contacts": 0,
    "returning_contacts": 0,
    "conversations_answered": 0,
    "conversations_by_ad": {},
}
