-- The messages this build recomputes, with every contact their events name: those with an event
-- loaded since the last build (run_limits). changed_from is the earliest time any version of
-- the message had: among all its events, whenever loaded, and the events a report replaced
-- (raw.contact_revisions, with the contact and time they had). Its rows in every model, before
-- and after this build, are at or after that time. A link between identifiers loaded since
-- (a number change, a business-scoped id beside a number) may give every message of the
-- contacts it joins another contact: all their messages are recomputed.
{#- The planner cannot know how many events are loaded since read_from (a value it reads when
    it runs) and guesses a third of the table, for which it would read every event; they are a
    few thousand, found through the indexes on loaded_at and message_id. -#}
{{ config(pre_hook="set local enable_seqscan = off") }}

with

limits as (
    select * from {{ ref('run_limits') }}
),

identities as (
    select * from {{ ref('int_contact_identities') }}
),

new_links as (
    select * from {{ ref('stg_whatsapp__contact_links') }}
    where loaded_at >= (select limits.read_from from limits)
),

revisions as (
    select * from {{ source('whatsapp', 'contact_revisions') }}
    where revised_at >= (select limits.read_from from limits)
),

new_events as (
    select
        message_id,
        user_id as contact_id,
        occurred_at
    from {{ source('whatsapp', 'events') }}
    where loaded_at >= (select limits.read_from from limits)
),

-- The same messages' events loaded before: their earlier versions were made of them.
earlier_events as (
    select
        message_id,
        user_id as contact_id,
        occurred_at
    -- Read twice, each time through its own index: not an import CTE, which Postgres would
    -- materialize whole for two readers.
    from {{ source('whatsapp', 'events') }}
    where
        message_id = any(array(select distinct new_events.message_id from new_events))
        and loaded_at < (select limits.read_from from limits)
),

-- Every identifier of the contacts a new link joins (each was, or is, one of their ids).
linked_identifiers as (
    select identities.identifier
    from identities
    where
        identities.contact_id in (
            select linked.contact_id
            from identities as linked
            where
                linked.identifier in (select new_links.identifier from new_links)
                or linked.identifier in (select new_links.linked_identifier from new_links)
        )
),

linked_events as (
    select
        message_id,
        user_id as contact_id,
        occurred_at
    from {{ source('whatsapp', 'events') }}
    where user_id = any(array(select linked_identifiers.identifier from linked_identifiers))
),

versions as (
    select * from new_events

    union all

    select * from earlier_events

    union all

    select * from linked_events

    union all

    -- The events a report replaced, with the contact and time they had. A revision recorded
    -- before those were kept has neither: its contact is recomputed from the beginning.
    select
        message_id,
        user_id as contact_id,
        coalesce(occurred_at, '-infinity'::timestamptz) as occurred_at
    from revisions
),

final as (
    select
        message_id,
        contact_id,
        min(occurred_at) as changed_from
    from versions
    group by message_id, contact_id
)

select * from final
