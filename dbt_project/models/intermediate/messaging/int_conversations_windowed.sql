-- WhatsApp's customer-service window: a conversation opens with a contact's inbound message when
-- none is open, and stays open until 24 hours after the contact's latest inbound message.
-- One pass over each contact's messages in time order (an inbound message before an outbound
-- one at the same instant): each message learns the latest inbound message before it, which
-- says whether an inbound message opens a conversation and whether an outbound one falls in the
-- open window. A window holds exactly the outbound messages less than 24 hours after the latest
-- inbound message at or before them: an inbound message extends a window only if it comes less
-- than 24 hours after the one before it, so never after an outbound message 24 hours past that.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}],
    )
}}

{#- Each contact's messages so far, in the timeline's order (the running counts below). -#}
{%- set up_to_here -%}
    partition by contact_id
    order by occurred_at asc, direction_order asc, message_id asc
    rows between unbounded preceding and current row
{%- endset %}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

messages as (
    select * from {{ ref('int_messages_unioned') }}
    -- A history backfill's past messages count in contacts, not in response and traffic figures
    -- (docs/events.md, "Coexistence").
    where
        is_backfill is not true
        {% if is_incremental() %}
            -- An incremental build recomputes the contacts whose messages changed
            -- (contacts_this_run), whole.
            and contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
        {% endif %}
),

-- For an inbound message, the previous inbound message; for an outbound one, the latest
-- inbound message at or before it.
timeline as (
    select
        message_id,
        contact_id,
        business_phone_number_id,
        agent_id,
        occurred_at,
        loaded_at,
        direction = 'inbound' as is_inbound,
        -- Within an instant, inbound first: the same order in every window below.
        case when direction = 'inbound' then 0 else 1 end as direction_order,
        max(case when direction = 'inbound' then occurred_at end) over (
            contact_timeline rows between unbounded preceding and 1 preceding
        ) as previous_inbound_at
    from messages
    window contact_timeline as (
        partition by contact_id
        order by {{ timeline_order() }}
    )
),

-- At exactly 24 hours the window has closed: that message opens a new conversation.
flagged as (
    select
        *,
        is_inbound and (
            previous_inbound_at is null
            or occurred_at >= previous_inbound_at + interval '24 hours'
        ) as opens_conversation,
        coalesce(
            not is_inbound and occurred_at < previous_inbound_at + interval '24 hours', false
        ) as is_in_window
    from timeline
),

numbered as (
    select
        *,
        sum(case when opens_conversation then 1 else 0 end)
            over up_to_here as conversation_number,
        sum(case when is_in_window then 1 else 0 end) over up_to_here as outbound_so_far
    from flagged
    window up_to_here as ({{ up_to_here }})
),

-- An outbound message's place among its window's: the outbound messages counted since the
-- message that opened the conversation.
ranked as (
    select
        *,
        outbound_so_far
        - max(case when opens_conversation then outbound_so_far end)
            over up_to_here as outbound_number
    from numbered
    window up_to_here as ({{ up_to_here }})
),

windows as (
    select
        contact_id,
        conversation_number,
        max(business_phone_number_id) filter (where is_inbound) as business_phone_number_id,
        max(message_id) filter (
            where is_in_window and outbound_number = 1
        ) as first_response_message_id,
        max(agent_id) filter (
            where is_in_window and outbound_number = 1
        ) as first_response_agent_id,
        count(*) filter (where is_inbound) as inbound_messages,
        count(*) filter (where is_in_window) as outbound_messages,
        min(occurred_at) filter (where is_inbound) as opened_at,
        max(occurred_at) as last_message_at,
        min(occurred_at) filter (where is_in_window) as first_response_at,
        max(occurred_at) filter (where is_inbound) + interval '24 hours' as closed_at,
        max(loaded_at) as loaded_at
    from ranked
    where conversation_number > 0 and (is_inbound or is_in_window)
    group by contact_id, conversation_number
),

final as (
    select
        md5(windows.contact_id || '|' || windows.opened_at::text) as conversation_id,
        windows.contact_id,
        windows.business_phone_number_id,
        windows.first_response_message_id,
        windows.first_response_agent_id,
        windows.conversation_number,
        windows.inbound_messages,
        windows.outbound_messages,
        windows.opened_at,
        windows.last_message_at,
        windows.first_response_at,
        windows.closed_at,
        windows.loaded_at
    from windows
)

select * from final
{{ in_contact_order() }}
