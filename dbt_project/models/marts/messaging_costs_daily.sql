-- What WhatsApp cost, per local day, business number, pricing category, pricing type and
-- market: the messages Meta charged and those it priced free, and their estimated cost at the
-- rate card (seed message_rates) in force that day. Free messages are valued at the same card:
-- what the free windows (customer service, free entry point) saved. A message counts once, on
-- its first billable status (int_message_charges).
-- Incremental by day: a message counts on one of its statuses, at or after the earliest time
-- of any of its versions, so the days from the first this run changed on (days_this_run) hold
-- every day a changed message counted on, before and after.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["activity_date >= (select first_day from intermediate.days_this_run)"],
        on_schema_change='fail',
        indexes=[{'columns': ['activity_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
days_this_run as (
    select * from {{ ref('days_this_run') }}
),

charges as (
    select * from {{ ref('int_message_charges') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the days from the first this run changed on.
        where counted_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

rates as (
    select * from {{ ref('message_rates') }}
),

counted as (
    select
        counted_date as activity_date,
        business_phone_number_id,
        pricing_category,
        pricing_type,
        market,
        count(*) filter (where is_charged) as messages_charged,
        count(*) filter (where not is_charged) as messages_free
    from charges
    group by counted_date, business_phone_number_id, pricing_category, pricing_type, market
),

-- The rate of each group: its market's row in force that day, else the row for any market.
priced as (
    select distinct on (
        counted.activity_date,
        counted.business_phone_number_id,
        counted.pricing_category,
        counted.pricing_type,
        counted.market
    )
        counted.*,
        rates.currency,
        rates.price_per_message
    from counted
    left join rates
        on
            counted.pricing_category = rates.category
            and rates.market in (counted.market, '*')
            and counted.activity_date >= rates.effective_from
    order by
        counted.activity_date asc,
        counted.business_phone_number_id asc,
        counted.pricing_category asc,
        counted.pricing_type asc,
        counted.market asc,
        rates.market = '*' asc,
        rates.effective_from desc
),

final as (
    select
        activity_date,
        business_phone_number_id,
        pricing_category,
        pricing_type,
        market,
        currency,
        messages_charged,
        messages_free,
        case
            when price_per_message is null then messages_charged + messages_free else 0
        end as messages_without_rate,
        (messages_charged * price_per_message)::numeric(18, 6) as estimated_cost,
        (messages_free * price_per_message)::numeric(18, 6) as estimated_savings
    from priced
)

select * from final
