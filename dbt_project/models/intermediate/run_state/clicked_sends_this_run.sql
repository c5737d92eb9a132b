-- The messages that an inbound message of this build names as its context (a button or an
-- interactive reply): a template send they click, however long ago it was sent. The rest of
-- what changes a send (its statuses, a reply, an opt-out, the next template) happens within a
-- day of it, from days_this_run's first_day minus one on.
with

messages_this_run as (
    select * from {{ ref('messages_this_run') }}
),

messages as (
    select * from {{ ref('int_messages_unioned') }}
    where
        message_id = any(array(select messages_this_run.message_id from messages_this_run))
        and context_message_id is not null
        and message_type in ('button', 'interactive')
),

final as (
    select distinct context_message_id as message_id
    from messages
)

select * from final
