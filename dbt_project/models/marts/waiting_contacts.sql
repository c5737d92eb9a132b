-- The backlog: contacts waiting for a reply now (as of the build), and for how long.
with

waits as (
    select * from {{ ref('int_waits_paired') }}
    where not is_answered
),

-- Only the waiting contacts' conversations, through the index on the contact (`= any(array())`,
-- see touched_contacts.sql): a join would hash every conversation at each build.
conversations as (
    select * from {{ ref('int_conversations_windowed') }}
    where contact_id = any(array(select waits.contact_id from waits))
),

final as (
    select
        waits.contact_id,
        conversations.conversation_id,
        conversations.business_phone_number_id,
        waits.inbound_messages,
        extract(epoch from now() - waits.waiting_since)::double precision as waiting_seconds,
        -- Inside WhatsApp's 24-hour window a free-form reply is still possible.
        coalesce(conversations.closed_at > now(), false) as is_window_open,
        waits.waiting_since,
        conversations.closed_at as window_closes_at
    from waits
    left join conversations
        on
            waits.contact_id = conversations.contact_id
            and waits.waiting_since >= conversations.opened_at
            and waits.waiting_since < conversations.closed_at
)

select * from final
