-- One row per wait: a contact's first inbound message after their last outbound message (or
-- their first ever) starts it; the next outbound message, if any, is its response.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
    where {{ only_touched_contacts('contact_id') }}
),

-- Number each contact's outbound messages in time order; an inbound message at the same
-- instant as an outbound one goes first (the reply cannot precede what it answers).
sequenced as (
    select
        message_id,
        contact_id,
        agent_id,
        direction,
        occurred_at,
        loaded_at,
        sum(case when direction = 'outbound' then 1 else 0 end) over (
            partition by contact_id
            order by
                occurred_at asc,
                case when direction = 'inbound' then 0 else 1 end asc,
                message_id asc
            rows between unbounded preceding and current row
        ) as outbound_messages_before
    from messages
),

-- Inbound messages with the same count of earlier outbound messages share one wait.
waits as (
    select
        contact_id,
        outbound_messages_before as wait_number,
        count(*) as inbound_messages,
        min(occurred_at) as waiting_since,
        max(loaded_at) as loaded_at
    from sequenced
    where direction = 'inbound'
    group by contact_id, outbound_messages_before
),

-- The outbound message numbered n + 1 answers wait n; outbound messages after no inbound
-- message (proactive or template sends) match no wait.
replies as (
    select
        contact_id,
        message_id as response_message_id,
        agent_id,
        outbound_messages_before - 1 as wait_number,
        occurred_at as responded_at,
        loaded_at
    from sequenced
    where direction = 'outbound'
),

final as (
    select
        waits.contact_id,
        replies.response_message_id,
        replies.agent_id,
        waits.wait_number,
        waits.inbound_messages,
        extract(
            epoch from replies.responded_at - waits.waiting_since
        )::double precision as response_seconds,
        replies.response_message_id is not null as is_answered,
        waits.waiting_since,
        replies.responded_at,
        greatest(waits.loaded_at, replies.loaded_at) as loaded_at
    from waits
    left join replies
        on
            waits.contact_id = replies.contact_id
            and waits.wait_number = replies.wait_number
)

select * from final
{{ in_contact_order() }}
