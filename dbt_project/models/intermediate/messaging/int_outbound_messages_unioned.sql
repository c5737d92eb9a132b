-- One row per outbound message, whichever source reported it (the CRM's message_sent and/or
-- Meta's status notifications), at the earliest time any source reports for it: the outbound
-- rows of int_messages_unioned, which computes them. A view: a filter on the message reaches
-- int_messages_unioned's index.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
),

final as (
    select
        message_id,
        contact_id,
        agent_id,
        business_phone_number_id,
        is_reported_sent,
        occurred_at as sent_at,
        loaded_at
    from messages
    -- A history backfill's past messages count in contacts, not in traffic or delivery figures.
    where direction = 'outbound' and is_backfill is not true
)

select * from final
