-- response_times_daily's figures for each business number: answered waits by the local day the
-- wait started and the number written to. The metrics API's daily series for one number reads
-- it (and response_times_daily for every number), where it would otherwise sort that period's
-- responses per request; each day's median is that day's own, over its responses.
with

responses as (
    select * from {{ ref('responses') }}
    where {{ only_changed_days() }}
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
