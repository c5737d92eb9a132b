-- How many responses each agent gave in each number of seconds, per local day of the response,
-- business number and whether it was the conversation's first response: the distribution the
-- metrics API takes each agent's exact medians and percentiles of over any period.
with

responses as (
    select * from {{ ref('responses') }}
    where {{ only_changed_days() }}
),

final as (
    select
        agent_id,
        business_phone_number_id,
        response_seconds,
        count(*) as responses,
        coalesce(is_first_response, false) as is_first_response,
        responded_date
    from responses
    group by
        responded_date,
        agent_id,
        business_phone_number_id,
        coalesce(is_first_response, false),
        response_seconds
)

select * from final
