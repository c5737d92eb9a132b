"""The SLA figures (marts sla_attainment_daily and sla_breaches) as queries: sums of the daily
counts over the period asked, the attainment rate from those sums (never an average of daily
rates), and the breaches behind them, latest-first by how late."""

from dashboard.metrics import FOR_NUMBER, IN_PERIOD

COUNTS = [
    "waits",
    "answered_within_target",
    "answered_late",
    "breached",
    "open_past_target",
    "open_within_target",
    "first_responses",
    "first_responses_within_target",
    "first_responses_under_1m",
    "first_responses_1_to_5m",
    "first_responses_5_to_15m",
    "first_responses_15_to_60m",
    "first_responses_over_60m",
]
_SUMS = ",\n    ".join(f"coalesce(sum({name}), 0)::bigint as {name}" for name in COUNTS)
# Decided waits: answered, or open past their target (open within it may still be met).
_RATE = """sum(answered_within_target)::double precision
        / nullif(sum(answered_within_target + answered_late + open_past_target), 0)"""

TOTALS = f"""
select
    {_SUMS},
    {_RATE} as attainment_rate
from marts.sla_attainment_daily
where activity_date {IN_PERIOD} and {FOR_NUMBER}
"""

DAYS = f"""
select
    activity_date,
    {_SUMS},
    {_RATE} as attainment_rate
from marts.sla_attainment_daily
where activity_date {IN_PERIOD} and {FOR_NUMBER}
group by activity_date
order by activity_date
"""

# The dashboard's list: the latest-started breaches, worst first within a day; the CSV export
# (/api/v1/export/sla_breaches.csv) has them all.
BREACH_LIMIT = 100
BREACHES = f"""
select
    activity_date, business_phone_number_id, contact_id, conversation_id, wait_kind, agent_id,
    waiting_since, responded_at, business_seconds, target_seconds, seconds_late, is_open
from marts.sla_breaches
where activity_date {IN_PERIOD} and {FOR_NUMBER}
order by activity_date desc, seconds_late desc, waiting_since, contact_id
limit {BREACH_LIMIT}
"""

QUIET_DAY = {name: 0 for name in COUNTS} | {"attainment_rate": None}
