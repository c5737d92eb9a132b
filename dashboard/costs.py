"""What WhatsApp cost (mart messaging_costs_daily) as queries: the messages charged and free and
their estimated cost and savings over the period asked, in total and by day, category, market
and pricing type. Amounts are summed per currency only: costs in different currencies are never
added together, so every figure with an amount carries its currency (null for messages the rate
card has no price for, whose cost is unknown, not 0)."""

from dashboard.metrics import FOR_NUMBER, IN_PERIOD

_COUNTS = ("messages_charged", "messages_free", "messages_without_rate")
_FIGURES = ",\n    ".join(
    [f"sum({name})::bigint as {name}" for name in _COUNTS]
    + ["sum(estimated_cost) as estimated_cost", "sum(estimated_savings) as estimated_savings"]
)
_COSTS = f"""
from marts.messaging_costs_daily
where activity_date {IN_PERIOD} and {FOR_NUMBER}
"""


def _by(*keys: str) -> str:
    """The period's figures for each value of ``keys`` and currency."""
    key_list = ", ".join(keys)
    return f"""
select
    {key_list},
    currency,
    {_FIGURES}
{_COSTS}
group by {key_list}, currency
order by currency nulls last, {", ".join(f"{key} nulls last" for key in keys)}
"""


TOTALS = f"""
select
    currency,
    {_FIGURES}
{_COSTS}
group by currency
order by currency nulls last
"""

BY_CATEGORY = _by("pricing_category")
BY_MARKET = _by("market")
BY_PRICING_TYPE = _by("pricing_type")

# The spend of each day: for every category and currency with charged messages in the period,
# a row on every day of it (0 on days without; a null cost where no rate applies). No row at all
# when nothing was charged: the API's every_day gives those days an empty ``spend``.
DAYS = f"""
with
costs as (
    select * {_COSTS}
),
series as (
    select distinct pricing_category, currency
    from costs
    where messages_charged > 0
),
days as (
    select day::date as activity_date
    from generate_series(%(start)s::date, %(end)s::date, interval '1 day') as days (day)
),
per_day as (
    select
        activity_date,
        pricing_category,
        currency,
        sum(messages_charged)::bigint as messages_charged,
        sum(estimated_cost) as estimated_cost
    from costs
    group by activity_date, pricing_category, currency
)
select
    days.activity_date,
    series.pricing_category,
    series.currency,
    coalesce(per_day.messages_charged, 0) as messages_charged,
    case when series.currency is not null then coalesce(per_day.estimated_cost, 0) end
        as estimated_cost
from days
cross join series
left join per_day
    on days.activity_date = per_day.activity_date
    and series.pricing_category is not distinct from per_day.pricing_category
    and series.currency is not distinct from per_day.currency
order by days.activity_date, series.currency nulls last, series.pricing_category nulls last
"""


def spend_by_day(rows: list[dict]) -> list[dict]:
    """DAYS' rows as one item per day, its ``spend`` by category and currency (the same series,
    in the same order, on every day; none when nothing was charged in the period)."""
    days: dict[str, list] = {}
    for row in rows:
        spend = {key: value for key, value in row.items() if key != "activity_date"}
        days.setdefault(row["activity_date"], []).append(spend)
    return [{"activity_date": day, "spend": spend} for day, spend in days.items()]
