-- One row per wait: a contact's first inbound message after their last outbound message (or
-- their first ever) starts it; the next outbound message, if any, is its response.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

messages as (
    select * from {{ ref('int_messages_unioned') }}
    -- A history backfill's past messages count in contacts, not in response-time and SLA figures
    -- (docs/events.md, "Coexistence").
    where
        is_backfill is not true
        {% if is_incremental() %}
            -- An incremental build recomputes the contacts whose messages changed
            -- (contacts_this_run), whole.
            and contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
        {% endif %}
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
        paired.wait_number,
        paired.inbound_messages,
        extract(
            epoch from paired.responded_at - paired.waiting_since
        )::double precision as response_seconds,
        paired.response_message_id is not null as is_answered,
        paired.waiting_since,
        paired.responded_at,
        paired.loaded_at
    from paired
)

select * from final
{{ in_contact_order() }}
