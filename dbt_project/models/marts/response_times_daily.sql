-- How fast contacts get an answer: answered waits by the local day the wait started.
with

waits as (
    select * from {{ ref('int_waits_paired') }}
),

responses as (
    select
        {{ to_reporting_time('waiting_since') }}::date as activity_date,
        response_seconds
    from waits
    where is_answered
),

final as (
    select
        activity_date,
        count(*) as responses,
        avg(response_seconds) as avg_response_seconds,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) as median_response_seconds,
        percentile_cont(0.9) within group (order by response_seconds) as p90_response_seconds
    from responses
    group by activity_date
)

select * from final
