-- The messages this build recomputes, with every contact their events name: those with an event
-- loaded since the last build (run_limits). changed_from is the earliest time any version of
-- the message had: among all its events, whenever loaded, and the events a report replaced
-- (raw.contact_revisions, with the contact and time they had). Its rows in every model, before
-- and after this build, are at or after that time.
with

limits as (
    select * from {{ ref('run_limits') }}
),

events as (
    select * from {{ source('whatsapp', 'events') }}
),

revisions as (
    select * from {{ source('whatsapp', 'contact_revisions') }}
    where revised_at >= (select limits.read_from from limits)
),

touched as (
    select message_id
    from events
    where loaded_at >= (select limits.read_from from limits)
),

versions as (
    select
        message_id,
        user_id as contact_id,
        occurred_at
    from events
    where message_id = any(array(select touched.message_id from touched))

    union all

    -- A revision from before raw.contact_revisions kept the message and time: its contact is
    -- recomputed from the beginning.
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
