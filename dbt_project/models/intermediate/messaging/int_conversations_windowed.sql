-- WhatsApp's customer-service window: a conversation opens with a contact's inbound message when
-- none is open, and stays open until 24 hours after the contact's latest inbound message.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
    where {{ only_touched_contacts('contact_id') }}
),

inbound as (
    select
        message_id,
        contact_id,
        business_phone_number_id,
        occurred_at,
        loaded_at,
        lag(occurred_at) over (
            partition by contact_id order by occurred_at asc, message_id asc
        ) as previous_inbound_at
    from messages
    where direction = 'inbound'
),

-- At exactly 24 hours the window has closed: that message opens a new conversation.
numbered as (
    select
        message_id,
        contact_id,
        business_phone_number_id,
        occurred_at,
        loaded_at,
        sum(
            case
                when
                    previous_inbound_at is null
                    or occurred_at >= previous_inbound_at + interval '24 hours'
                    then 1
                else 0
            end
        ) over (
            partition by contact_id
            order by occurred_at asc, message_id asc
            rows between unbounded preceding and current row
        ) as conversation_number
    from inbound
),

windows as (
    select
        contact_id,
        conversation_number,
        max(business_phone_number_id) as business_phone_number_id,
        count(*) as inbound_messages,
        min(occurred_at) as opened_at,
        max(occurred_at) as last_inbound_at,
        max(occurred_at) + interval '24 hours' as closed_at,
        max(loaded_at) as loaded_at
    from numbered
    group by contact_id, conversation_number
),

outbound_in_window as (
    select
        windows.contact_id,
        windows.conversation_number,
        messages.message_id,
        messages.agent_id,
        messages.occurred_at,
        messages.loaded_at,
        row_number() over (
            partition by windows.contact_id, windows.conversation_number
            order by messages.occurred_at asc, messages.message_id asc
        ) as outbound_number
    from windows
    inner join messages
        on
            windows.contact_id = messages.contact_id
            and messages.direction = 'outbound'
            and windows.opened_at <= messages.occurred_at
            and windows.closed_at > messages.occurred_at
),

outbound_summary as (
    select
        contact_id,
        conversation_number,
        count(*) as outbound_messages,
        max(occurred_at) as last_outbound_at,
        max(case when outbound_number = 1 then message_id end) as first_response_message_id,
        max(case when outbound_number = 1 then agent_id end) as first_response_agent_id,
        min(occurred_at) as first_response_at,
        max(loaded_at) as loaded_at
    from outbound_in_window
    group by contact_id, conversation_number
),

final as (
    select
        md5(windows.contact_id || '|' || windows.opened_at::text) as conversation_id,
        windows.contact_id,
        windows.business_phone_number_id,
        outbound_summary.first_response_message_id,
        outbound_summary.first_response_agent_id,
        windows.conversation_number,
        windows.inbound_messages,
        coalesce(outbound_summary.outbound_messages, 0) as outbound_messages,
        windows.opened_at,
        greatest(
            windows.last_inbound_at, outbound_summary.last_outbound_at
        ) as last_message_at,
        outbound_summary.first_response_at,
        windows.closed_at,
        greatest(windows.loaded_at, outbound_summary.loaded_at) as loaded_at
    from windows
    left join outbound_summary
        on
            windows.contact_id = outbound_summary.contact_id
            and windows.conversation_number = outbound_summary.conversation_number
)

select * from final
{{ in_contact_order() }}
