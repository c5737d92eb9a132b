-- One row per identifier that Meta linked to another (stg_whatsapp__contact_links), with the
-- contact it belongs to. Linked identifiers make one contact, however many links lie between
-- them (a number, its BSUID, the number it changed to, that number's BSUID, ...). Its
-- contact_id is the first of them seen: the identifier of the earliest event (as the event's
-- user_id), then of the earliest link, then the smallest. So a contact keeps the id it had when
-- they change number, and a link that arrives after the messages, or before, gives the same.
-- Identifiers never linked are their own contact and have no row here.
{{
    config(
        materialized='table',
        indexes=[{'columns': ['identifier'], 'unique': True}, {'columns': ['contact_id']}],
    )
}}

with recursive

links as (
    select * from {{ ref('stg_whatsapp__contact_links') }}
),

events as (
    select * from {{ ref('base_whatsapp__events') }}
    where exclusion_reason is null
),

edges as (
    select
        identifier,
        linked_identifier
    from links

    union

    select
        linked_identifier as identifier,
        identifier as linked_identifier
    from links
),

-- Every linked identifier with every identifier it reaches (itself included). Components are
-- a person's few identifiers: this is small.
reach (identifier, member) as (
    select distinct
        identifier,
        identifier as member
    from edges

    union

    select
        reach.identifier,
        edges.linked_identifier as member
    from reach
    inner join edges on reach.member = edges.identifier
),

-- When each identifier was first named in a link, and when its links were loaded.
linked_at as (
    select
        ends.identifier,
        min(ends.occurred_at) as first_linked_at,
        max(ends.loaded_at) as loaded_at
    from (
        select
            identifier,
            occurred_at,
            loaded_at
        from links

        union all

        select
            linked_identifier as identifier,
            occurred_at,
            loaded_at
        from links
    ) as ends
    group by ends.identifier
),

-- When each identifier was first seen as an event's contact (through the index on user_id).
first_seen as (
    select
        linked_at.identifier,
        linked_at.first_linked_at,
        linked_at.loaded_at,
        own.first_event_at
    from linked_at
    left join lateral (
        select min(events.occurred_at) as first_event_at
        from events
        where events.contact_id = linked_at.identifier
    ) as own on true
),

chosen as (
    select distinct on (reach.identifier)
        reach.identifier,
        reach.member as contact_id
    from reach
    inner join first_seen on reach.member = first_seen.identifier
    order by
        reach.identifier asc,
        first_seen.first_event_at asc nulls last,
        first_seen.first_linked_at asc,
        reach.member asc
),

final as (
    select
        chosen.identifier,
        chosen.contact_id,
        first_seen.first_event_at,
        first_seen.first_linked_at,
        first_seen.loaded_at
    from chosen
    inner join first_seen on chosen.identifier = first_seen.identifier
)

select * from final
