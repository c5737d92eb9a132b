-- What the marts leave out of raw.events, and why: one row per raw event that is left out
-- (is_excluded: its message or contact id is too long, or it cannot have happened when it
-- says), or that counts with some of its values left out (unusable_values). The rules are in
-- base_whatsapp__events. Ids are cut to max_id_length characters: event_id finds the raw row.
-- A view: always current, nothing to build, one pass over raw.events to read.
with

events as (
    select * from {{ ref('base_whatsapp__events') }}
),

reasons as (
    select
        event_id,
        left(message_id, {{ var('max_id_length') }}) as message_id,
        left(contact_id, {{ var('max_id_length') }}) as contact_id,
        event_name,
        status,
        source,
        coalesce(exclusion_reason, unusable_values) as reason,
        exclusion_reason is not null as is_excluded,
        occurred_at,
        loaded_at
    from events
    where exclusion_reason is not null or unusable_values is not null
)

select * from reasons
