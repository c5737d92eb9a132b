-- One row per change of a contact's marketing preference: Meta's user_preferences webhook,
-- sent when a contact stops marketing messages (a "Stop" button, the chat menu) or resumes them.
-- Only usable events, their values checked (base_whatsapp__events; the rest: excluded_events).
-- Found through the partial index on these events (migration 0008), whose predicate is the
-- filter below.
with

events as (
    select * from {{ ref('base_whatsapp__events') }}
    where event_name = 'preference_updated' and exclusion_reason is null
),

final as (
    select
        message_id as preference_update_id,
        contact_id,
        business_phone_number_id,
        preference_category,
        preference,
        occurred_at,
        loaded_at
    from events
)

select * from final
