-- How many responses took each number of seconds, per local day the wait started, business
-- number and whether it was the conversation's first response: the distribution the metrics
-- API takes exact medians and percentiles of over any period, from far fewer rows than
-- responses (replies are timed in whole seconds, and the same times recur).
with

responses as (
    select * from {{ ref('responses') }}
    where {{ only_changed_days() }}
),

final as (
    select
        business_phone_number_id,
        response_seconds,
        count(*) as responses,
        coalesce(is_first_response, false) as is_first_response,
        activity_date
    from responses
    group by
        activity_date,
        business_phone_number_id,
        coalesce(is_first_response, false),
        response_seconds
)

select * from final
