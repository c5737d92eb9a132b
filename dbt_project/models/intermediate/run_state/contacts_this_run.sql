-- The contacts this build recomputes, whole, in every per-contact model: each contact named by
-- a message that changed (messages_this_run), with the earliest time among their changed
-- messages. The rest of each contact's rows stay as they are. Messages name identifiers: the
-- contact an identifier belongs to (int_contact_identities) is recomputed too, and so is the
-- identifier itself, which may have been a contact of its own before a link joined it.
with

messages as (
    select * from {{ ref('messages_this_run') }}
),

identities as (
    select * from {{ ref('int_contact_identities') }}
),

named as (
    select
        contact_id,
        changed_from
    from messages

    union all

    select
        identities.contact_id,
        messages.changed_from
    from messages
    inner join identities on messages.contact_id = identities.identifier
),

final as (
    select
        contact_id,
        min(changed_from) as changed_from
    from named
    group by contact_id
)

select * from final
