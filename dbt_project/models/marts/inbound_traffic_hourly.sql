-- When the traffic peaks, per business number: inbound messages per local day and hour. The
-- metrics API filters it by number and sums any date range; hourly_traffic holds the same counts
-- across numbers.
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

messages as (
    select * from {{ ref('int_messages_unioned') }}
    -- A history backfill's past messages count in contacts, not in traffic figures
    -- (docs/events.md, "Coexistence").
    where
        is_backfill is not true
        {% if is_incremental() %}
            -- An incremental build recomputes the days from the first this run changed on.
            and occurred_date >= (select days_this_run.first_day from days_this_run)
        {% endif %}
),

inbound as (
    select
        business_phone_number_id,
        {{ to_reporting_time('occurred_at') }} as local_time
    from messages
    where direction = 'inbound'
),

final as (
    select
        business_phone_number_id,
        local_time::date as activity_date,
        extract(hour from local_time)::integer as hour_of_day,
        extract(isodow from local_time)::integer as day_of_week,
        count(*) as messages_received
    from inbound
    group by 1, 2, 3, 4
)

select * from final
