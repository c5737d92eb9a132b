-- The answered waits' SLA figures per local day the wait started and business number, and the
-- first responses by how long they took (in opening hours). sla_attainment_daily adds the
-- waits still open, which change at every build. Incremental by day, like the daily marts.
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

waits as (
    select * from {{ ref('int_sla_waits_answered') }}
    where
        target_seconds is not null
        {% if is_incremental() %}
            -- An incremental build recomputes the days from the first this run changed on.
            and activity_date >= (select days_this_run.first_day from days_this_run)
        {% endif %}
),

final as (
    select
        activity_date,
        business_phone_number_id,
        count(*) as answered_waits,
        count(*) filter (where is_within_target) as answered_within_target,
        count(*) filter (where not is_within_target) as answered_late,
        count(*) filter (where wait_kind = 'first_response') as first_responses,
        count(*) filter (
            where wait_kind = 'first_response' and is_within_target
        ) as first_responses_within_target,
        count(*) filter (
            where wait_kind = 'first_response' and business_seconds < 60
        ) as first_responses_under_1m,
        count(*) filter (
            where
            wait_kind = 'first_response'
            and business_seconds >= 60
            and business_seconds < 300
        ) as first_responses_1_to_5m,
        count(*) filter (
            where
            wait_kind = 'first_response'
            and business_seconds >= 300
            and business_seconds < 900
        ) as first_responses_5_to_15m,
        count(*) filter (
            where
            wait_kind = 'first_response'
            and business_seconds >= 900
            and business_seconds < 3600
        ) as first_responses_15_to_60m,
        count(*) filter (
            where wait_kind = 'first_response' and business_seconds >= 3600
        ) as first_responses_over_60m
    from waits
    group by activity_date, business_phone_number_id
)

select * from final
