-- The contacts this build recomputes, whole, in every per-contact model: each contact named by
-- a message that changed (messages_this_run), with the earliest time among their changed
-- messages. The rest of each contact's rows stay as they are.
with

messages as (
    select * from {{ ref('messages_this_run') }}
),

final as (
    select
        contact_id,
        min(changed_from) as changed_from
    from messages
    group by contact_id
)

select * from final
