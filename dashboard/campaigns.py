"""What templates and campaigns brought (marts template_performance_daily and campaign_funnel) as
queries. A template's figures are the sums of its days in the period, its rates computed from
those sums (never an average of daily rates) and its failures by error code added up; medians
of days cannot be combined, so templates have none. A campaign's row is the mart's, over all its
sends: the campaigns listed are those that sent in the period."""

from dashboard.metrics import FOR_NUMBER, IN_PERIOD

COUNTS = [
    "messages_sent",
    "messages_delivered",
    "messages_read",
    "messages_failed",
    "messages_replied",
    "messages_clicked",
    "opt_outs",
    "resumes",
]
# As the marts define them: read among delivered, the rest among sent (a reply proves a delivery
# Meta may not have reported).
RATES = {
    "delivery_rate": ("messages_delivered", "messages_sent"),
    "read_rate": ("messages_read", "messages_delivered"),
    "reply_rate": ("messages_replied", "messages_sent"),
    "click_rate": ("messages_clicked", "messages_sent"),
    "opt_out_rate": ("opt_outs", "messages_sent"),
}
_TEMPLATE = ("template_name", "template_language", "template_category")
_KEY = ", ".join(_TEMPLATE)
_RATES = ",\n    ".join(
    f"sums.{part}::double precision / nullif(sums.{whole}, 0) as {rate}"
    for rate, (part, whole) in RATES.items()
)
_SAME_TEMPLATE = " and ".join(f"sums.{key} is not distinct from merged.{key}" for key in _TEMPLATE)

TEMPLATES = f"""
with
days as (
    select *
    from marts.template_performance_daily
    where activity_date {IN_PERIOD} and {FOR_NUMBER}
),
sums as (
    select
        {_KEY},
        {", ".join(f"sum({name})::bigint as {name}" for name in COUNTS)}
    from days
    group by {_KEY}
),
failures as (
    select {_KEY}, codes.code, sum(codes.failures::bigint) as failures
    from days
    cross join lateral jsonb_each_text(days.failures_by_error_code) as codes (code, failures)
    group by {_KEY}, codes.code
),
merged as (
    select {_KEY}, jsonb_object_agg(code, failures) as failures_by_error_code
    from failures
    group by {_KEY}
)
select
    sums.*,
    coalesce(merged.failures_by_error_code, '{{}}'::jsonb) as failures_by_error_code,
    {_RATES}
from sums
left join merged on {_SAME_TEMPLATE}
order by sums.messages_sent desc, sums.template_name, sums.template_language nulls last,
    sums.template_category nulls last
"""

# A campaign sent in the period when its first send is on or before its last day and its latest
# send on or after its first (local days, as the mart has them).
CAMPAIGNS = """
select
    campaign_id, campaign_name, template_names, contacts_sent,
    messages_sent, messages_delivered, messages_read, messages_failed,
    coalesce(failures_by_error_code, '{}'::jsonb) as failures_by_error_code,
    messages_replied, messages_clicked, opt_outs, resumes,
    delivery_rate, read_rate, reply_rate, click_rate, opt_out_rate,
    median_seconds_to_read, median_seconds_to_reply, first_sent_date, last_sent_date,
    first_sent_at, last_sent_at
from marts.campaign_funnel
where first_sent_date <= %(end)s and last_sent_date >= %(start)s
order by last_sent_at desc, campaign_id
"""
