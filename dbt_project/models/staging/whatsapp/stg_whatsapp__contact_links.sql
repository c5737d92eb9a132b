-- Meta's statements that two identifiers are one contact, one row per statement and pair:
--   * same_user: an event names a contact by number and by business-scoped user id (BSUID);
--   * changed_identifier: a system message says the contact changed number (user_changed_number,
--     the new number and BSUID) or BSUID (user_changed_user_id); the previous BSUID is the old.
-- Nothing else links identifiers: not a name, not a username, not a guess. The number rules
-- (Mexico's 521, Brazil's ninth digit) are applied by the worker, which writes one E.164 number.
with

events as (
    select * from {{ ref('base_whatsapp__events') }}
    where names_other_ids and exclusion_reason is null
),

-- Each event's pairs, as (identifier, linked identifier, link type).
pairs as (
    select
        events.message_id,
        pair.identifier,
        pair.linked_identifier,
        pair.link_type,
        events.occurred_at,
        events.loaded_at
    from events
    cross join lateral (
        values
        (events.contact_id, events.contact_user_id, 'same_user'),
        (events.contact_id, events.changed_to_user_id, 'changed_identifier'),
        (events.changed_to_user_id, events.changed_to_contact_user_id, 'same_user'),
        (events.contact_id, events.changed_from_contact_user_id, 'same_user')
    ) as pair (identifier, linked_identifier, link_type)
),

final as (
    select distinct
        message_id,
        identifier,
        linked_identifier,
        link_type,
        occurred_at,
        loaded_at
    from pairs
    where
        linked_identifier is not null
        and identifier != linked_identifier
        and length(linked_identifier) <= {{ var('max_id_length') }}
)

select * from final
