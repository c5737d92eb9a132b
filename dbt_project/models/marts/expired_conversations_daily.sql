-- Conversations whose 24-hour window closed with no reply, by the local day it closed. Whether
-- a window has closed is decided at this build: a conversation row keeps the
-- is_expired_unanswered of its own last build, which a window closing since then leaves stale.
-- Incremental by day: a build recomputes the days from the first this run changed on
-- (days_this_run), and from the day of read_from (run_limits), before which the last build
-- started: every window that closed since then closed on or after that day.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "activity_date >= (select least(days_this_run.first_day, (run_limits.read_from at time zone '"
            ~ var('reporting_timezone') ~ "')::date) from intermediate.days_this_run"
            " cross join intermediate.run_limits)"
        ],
        on_schema_change='fail',
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
days_this_run as (
    select * from {{ ref('days_this_run') }}
),

run_limits as (
    select * from {{ ref('run_limits') }}
),

recompute_from as (
    select
        least(
            days_this_run.first_day,
            {{ to_reporting_time('run_limits.read_from') }}::date
        ) as first_day
    from days_this_run
    cross join run_limits
),

conversations as (
    select * from {{ ref('conversations') }}
    where
        closed_at <= now()
        {% if is_incremental() %}
            -- Through the index on closed_at: the local midnight that starts the first day.
            and closed_at >= (
                select
                    recompute_from.first_day::timestamp
                    at time zone '{{ var("reporting_timezone") }}'
                from recompute_from
            )
        {% endif %}
),

closed as (
    select
        {{ to_reporting_time('closed_at') }}::date as activity_date,
        not is_answered as is_expired_unanswered
    from conversations
),

final as (
    select
        activity_date,
        count(*) as conversations_closed,
        count(*) filter (where is_expired_unanswered) as expired_unanswered,
        count(*) filter (where is_expired_unanswered)::double precision
        / count(*) as expired_unanswered_rate
    from closed
    group by activity_date
)

select * from final
