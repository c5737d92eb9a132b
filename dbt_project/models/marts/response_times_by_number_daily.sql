-- response_times_daily's figures for each business number: answered waits by the local day the
-- wait started and the number written to. The metrics API's daily series for one number reads
-- it (and response_times_daily for every number), where it would otherwise sort that period's
-- responses per request; each day's median is that day's own, over its responses.
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

responses as (
    select * from {{ ref('responses') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the days from the first this run changed on.
        where activity_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

final as (
    select
        business_phone_number_id,
        count(*) as responses,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) as median_response_seconds,
        percentile_cont(0.9) within group (order by response_seconds) as p90_response_seconds,
        count(*) filter (where is_first_response) as first_responses,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) filter (where is_first_response) as median_first_response_seconds,
        percentile_cont(0.9) within group (
            order by response_seconds
        ) filter (where is_first_response) as p90_first_response_seconds,
        activity_date
    from responses
    where business_phone_number_id is not null
    group by activity_date, business_phone_number_id
)

select * from final
