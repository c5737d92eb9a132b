-- One row per wait: a contact's first inbound message after their last outbound message (or
-- their first ever) starts it; the next outbound message, if any, is its response.
with

{{ recomputed_cte() }}

-- An incremental build reads each contact with a changed message from the start of its first
-- wait not answered before the earliest change (changed_contacts.sql); the waits before it are
-- kept, and the numbering continues after the outbound messages before it.
messages as (
    {{ rows_to_recompute(ref('int_messages_unioned'), 'occurred_at') }}
),

earlier_outbound as (
    select
        earlier.contact_id,
        count(*) as outbound_messages
    from ({{ rows_before_recompute_point(ref('int_messages_unioned'), 'occurred_at') }}) as earlier
    where earlier.direction = 'outbound'
    group by earlier.contact_id
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
            order by {{ timeline_order() }}
            rows between unbounded preceding and current row
        ) as outbound_messages_before
    from messages
),

-- Inbound messages with the same count of earlier outbound messages share one wait, n; the
-- outbound message numbered n + 1 answers it. Outbound messages after no inbound message
-- (proactive or template sends) make a group with no wait.
paired as (
    select
        contact_id,
        case
            when direction = 'inbound' then outbound_messages_before
            else outbound_messages_before - 1
        end as wait_number,
        count(*) filter (where direction = 'inbound') as inbound_messages,
        min(occurred_at) filter (where direction = 'inbound') as waiting_since,
        max(message_id) filter (where direction = 'outbound') as response_message_id,
        max(agent_id) filter (where direction = 'outbound') as agent_id,
        max(occurred_at) filter (where direction = 'outbound') as responded_at,
        max(loaded_at) as loaded_at
    from sequenced
    group by contact_id, wait_number
    having count(*) filter (where direction = 'inbound') > 0
),

final as (
    select
        paired.contact_id,
        paired.response_message_id,
        paired.agent_id,
        paired.wait_number + coalesce(earlier_outbound.outbound_messages, 0) as wait_number,
        paired.inbound_messages,
        extract(
            epoch from paired.responded_at - paired.waiting_since
        )::double precision as response_seconds,
        paired.response_message_id is not null as is_answered,
        paired.waiting_since,
        paired.responded_at,
        paired.loaded_at
    from paired
    left join earlier_outbound on paired.contact_id = earlier_outbound.contact_id
)

select * from final
{{ in_contact_order() }}
