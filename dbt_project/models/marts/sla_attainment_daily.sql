-- Did we answer within the promised time? Per local day a wait started and business number:
-- the waits answered within their target (seed sla_targets, in opening hours), answered late,
-- still open past their target, and still open within it, as of the build; the attainment rate
-- is the share within target of the waits already decided (open within target are not yet);
-- and the first responses by how long they took in opening hours: under 1, 1-5, 5-15, 15-60
-- minutes and longer. The rows behind each figure: sla_breaches, responses.
with

answered as (
    select * from {{ ref('int_sla_answered_daily') }}
),

open_waits as (
    select * from {{ ref('int_sla_waits_open') }}
    where target_seconds is not null
),

open_daily as (
    select
        activity_date,
        business_phone_number_id,
        count(*) as open_waits,
        count(*) filter (where is_breached) as open_past_target
    from open_waits
    group by activity_date, business_phone_number_id
),

days as (
    select
        activity_date,
        business_phone_number_id
    from answered

    union

    select
        activity_date,
        business_phone_number_id
    from open_daily
),

joined as (
    select
        days.activity_date,
        days.business_phone_number_id,
        coalesce(answered.answered_within_target, 0) as answered_within_target,
        coalesce(answered.answered_late, 0) as answered_late,
        coalesce(open_daily.open_past_target, 0) as open_past_target,
        coalesce(open_daily.open_waits - open_daily.open_past_target, 0) as open_within_target,
        coalesce(answered.first_responses, 0) as first_responses,
        coalesce(answered.first_responses_within_target, 0) as first_responses_within_target,
        coalesce(answered.first_responses_under_1m, 0) as first_responses_under_1m,
        coalesce(answered.first_responses_1_to_5m, 0) as first_responses_1_to_5m,
        coalesce(answered.first_responses_5_to_15m, 0) as first_responses_5_to_15m,
        coalesce(answered.first_responses_15_to_60m, 0) as first_responses_15_to_60m,
        coalesce(answered.first_responses_over_60m, 0) as first_responses_over_60m
    from days
    left join answered
        on
            days.activity_date = answered.activity_date
            and days.business_phone_number_id is not distinct from answered.business_phone_number_id
    left join open_daily
        on
            days.activity_date = open_daily.activity_date
            and days.business_phone_number_id
            is not distinct from open_daily.business_phone_number_id
),

final as (
    select
        activity_date,
        business_phone_number_id,
        answered_within_target + answered_late + open_past_target + open_within_target as waits,
        answered_within_target,
        answered_late,
        answered_late + open_past_target as breached,
        open_past_target,
        open_within_target,
        answered_within_target::double precision
        / nullif(
            answered_within_target + answered_late + open_past_target, 0
        ) as attainment_rate,
        first_responses,
        first_responses_within_target,
        first_responses_under_1m,
        first_responses_1_to_5m,
        first_responses_5_to_15m,
        first_responses_15_to_60m,
        first_responses_over_60m
    from joined
)

select * from final
