-- How many outbound messages had each outcome and each time to deliver and to read, per local
-- day they were sent and business number: what the metrics API counts and takes exact medians
-- of over any period, from far fewer rows than message_delivery (statuses are timed in whole
-- seconds, and the same times recur).
with

message_delivery as (
    select * from {{ ref('message_delivery') }}
    where {{ only_changed_days() }}
),

final as (
    select
        business_phone_number_id,
        seconds_to_deliver,
        seconds_to_read,
        count(*) as messages,
        is_delivered,
        is_read,
        is_failed,
        sent_date
    from message_delivery
    group by
        sent_date,
        business_phone_number_id,
        is_delivered,
        is_read,
        is_failed,
        seconds_to_deliver,
        seconds_to_read
)

select * from final
