-- One row per outbound message and status (sent, delivered, read, failed, deleted).
with

events as (
    select * from {{ source('whatsapp', 'events') }}
),

status_updates as (
    select
        message_id,
        status,
        user_id as contact_id,
        properties ->> 'business_phone_number_id' as business_phone_number_id,
        properties ->> 'error_title' as error_title,
        properties ->> 'pricing_category' as pricing_category,
        properties ->> 'pricing_model' as pricing_model,
        properties ->> 'conversation_id' as conversation_id,
        properties ->> 'conversation_origin_type' as conversation_origin_type,
        source,
        (properties ->> 'error_code')::integer as error_code,
        (properties ->> 'is_billable')::boolean as is_billable,
        occurred_at,
        received_at,
        loaded_at
    from events
    where event_name = 'status_updated'
)

select * from status_updates
