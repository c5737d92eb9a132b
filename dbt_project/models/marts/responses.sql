-- One row per answered wait: who answered whom, how long the contact waited, and whether it was
-- the first response of its conversation.
with

waits as (
    select * from {{ ref('int_waits_paired') }}
),

conversations as (
    select * from {{ ref('int_conversations_windowed') }}
),

final as (
    select
        waits.response_message_id,
        waits.contact_id,
        conversations.conversation_id,
        waits.agent_id,
        conversations.business_phone_number_id,
        waits.inbound_messages,
        waits.response_seconds,
        coalesce(
            waits.response_message_id = conversations.first_response_message_id, false
        ) as is_first_response,
        {{ to_reporting_time('waits.waiting_since') }}::date as activity_date,
        {{ to_reporting_time('waits.responded_at') }}::date as responded_date,
        waits.waiting_since,
        waits.responded_at
    from waits
    left join conversations
        on
            waits.contact_id = conversations.contact_id
            and waits.waiting_since >= conversations.opened_at
            and waits.waiting_since < conversations.closed_at
    where waits.is_answered
)

select * from final
