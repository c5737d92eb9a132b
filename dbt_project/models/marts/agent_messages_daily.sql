-- Outbound messages per sending agent, local day sent and business number, and how many were
-- delivered and read: the metrics API's agents' sent side over any period.
with

message_delivery as (
    select * from {{ ref('message_delivery') }}
    where {{ only_changed_days() }}
),

final as (
    select
        agent_id,
        business_phone_number_id,
        count(*) as messages_sent,
        count(*) filter (where is_delivered) as messages_delivered,
        count(*) filter (where is_read) as messages_read,
        sent_date
    from message_delivery
    group by sent_date, agent_id, business_phone_number_id
)

select * from final
