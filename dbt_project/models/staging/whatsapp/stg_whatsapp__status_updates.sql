-- One row per outbound message and status (sent, delivered, read, failed, deleted).
-- Only usable events, their values checked (base_whatsapp__events; the rest: excluded_events).
with

events as (
    select * from {{ ref('base_whatsapp__events') }}
    where exclusion_reason is null
),

status_updates as (
    select
        message_id,
        status,
        contact_id,
        event_id,
        delivery_id,
        business_phone_number_id,
        error_title,
        pricing_category,
        pricing_model,
        pricing_type,
        contact_region,
        conversation_id,
        conversation_origin_type,
        source,
        error_code,
        is_billable,
        occurred_at,
        received_at,
        loaded_at
    from events
    where event_name = 'status_updated'
),

-- raw.events keeps one row per message id and status; should it ever hold two (rows from
-- before its unique key), the first by the worker's precedence is kept: Meta's before the
-- CRM's, then the earlier occurred_at, then the smaller delivery_id and event_id.
deduplicated as (
    select distinct on (message_id, status) *
    from status_updates
    order by
        message_id asc,
        status asc,
        source != 'whatsapp' asc,
        occurred_at asc,
        delivery_id asc,
        event_id asc
),

final as (
    select
        message_id,
        status,
        contact_id,
        delivery_id,
        business_phone_number_id,
        error_title,
        pricing_category,
        pricing_model,
        pricing_type,
        contact_region,
        conversation_id,
        conversation_origin_type,
        source,
        error_code,
        is_billable,
        occurred_at,
        received_at,
        loaded_at
    from deduplicated
)

select * from final
