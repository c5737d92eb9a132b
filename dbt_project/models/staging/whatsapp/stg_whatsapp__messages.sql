-- One row per WhatsApp message, inbound (message_received) or outbound as the CRM reported it
-- (message_sent). Outbound messages known only from Meta's statuses are added downstream.
with

events as (
    select * from {{ source('whatsapp', 'events') }}
),

messages as (
    select
        message_id,
        user_id as contact_id,
        properties ->> 'agent_id' as agent_id,
        properties ->> 'business_phone_number_id' as business_phone_number_id,
        case event_name
            when 'message_received' then 'inbound'
            else 'outbound'
        end as direction,
        properties ->> 'message_type' as message_type,
        source,
        coalesce((properties ->> 'content_length')::integer, 0) as content_length,
        coalesce((properties ->> 'has_media')::boolean, false) as has_media,
        occurred_at,
        received_at,
        loaded_at
    from events
    where event_name in ('message_received', 'message_sent')
),

-- raw.events keeps one row per message id and event name; should a message id ever arrive under
-- both names, its earliest report wins so that each message is counted once. Keyed by contact
-- too, so that a filter on the contact reaches the index on raw.events through this view.
deduplicated as (
    select distinct on (contact_id, message_id) *
    from messages
    order by contact_id asc, message_id asc, occurred_at asc, loaded_at asc
)

select * from deduplicated
