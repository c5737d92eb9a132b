-- How fast contacts get an answer: answered waits by the local day the wait started, with the
-- conversations' first responses and the time counted in opening hours only beside them.
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
        activity_date,
        count(*) as responses,
        avg(response_seconds) as avg_response_seconds,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) as median_response_seconds,
        percentile_cont(0.9) within group (order by response_seconds) as p90_response_seconds,
        percentile_cont(0.95) within group (order by response_seconds) as p95_response_seconds,
        count(*) filter (where is_first_response) as first_responses,
        avg(response_seconds) filter (
            where is_first_response
        ) as avg_first_response_seconds,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) filter (where is_first_response) as median_first_response_seconds,
        percentile_cont(0.9) within group (
            order by response_seconds
        ) filter (where is_first_response) as p90_first_response_seconds,
        avg(business_response_seconds) as avg_business_response_seconds,
        percentile_cont(0.5) within group (
            order by business_response_seconds
        ) as median_business_response_seconds,
        percentile_cont(0.9) within group (
            order by business_response_seconds
        ) as p90_business_response_seconds,
        percentile_cont(0.5) within group (
            order by business_response_seconds
        ) filter (where is_first_response) as median_first_business_response_seconds
    from responses
    group by activity_date
)

select * from final
