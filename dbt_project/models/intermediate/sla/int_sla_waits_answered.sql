-- Every answered wait against the response time promised for it (seed sla_targets), in the
-- business number's opening hours (responses' business_response_seconds). A wait is due a
-- first response (first_response_minutes) when nobody had answered the conversation it started
-- in before its reply, even if the reply came after that conversation's window; any other wait
-- is due a next response (next_response_minutes). A number without targets of its own has the
-- '*' row's.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}, {'columns': ['activity_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

responses as (
    select * from {{ ref('responses') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the contacts whose messages changed
        -- (contacts_this_run), whole.
        where contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
    {% endif %}
),

conversations as (
    select * from {{ ref('int_conversations_windowed') }}
    {% if is_incremental() %}
        where contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
    {% endif %}
),

targets as (
    select * from {{ ref('sla_targets') }}
),

kinds as (
    select
        responses.*,
        coalesce(
            conversations.first_response_at is null
            or conversations.first_response_at >= responses.responded_at,
            false
        ) as is_first_wait
    from responses
    left join conversations on responses.conversation_id = conversations.conversation_id
),

targeted as (
    select
        kinds.response_message_id,
        kinds.contact_id,
        kinds.conversation_id,
        kinds.agent_id,
        kinds.business_phone_number_id,
        kinds.is_first_wait,
        kinds.activity_date,
        kinds.waiting_since,
        kinds.responded_at,
        kinds.business_response_seconds as business_seconds,
        60 * case
            when kinds.is_first_wait
                then coalesce(own.first_response_minutes, fallback.first_response_minutes)
            else coalesce(own.next_response_minutes, fallback.next_response_minutes)
        end as target_seconds,
        kinds.loaded_at
    from kinds
    left join targets as own
        on kinds.business_phone_number_id = own.business_phone_number_id
    left join targets as fallback
        on fallback.business_phone_number_id = '*'
),

final as (
    select
        response_message_id,
        contact_id,
        conversation_id,
        agent_id,
        business_phone_number_id,
        case
            when is_first_wait then 'first_response' else 'next_response'
        end as wait_kind,
        activity_date,
        waiting_since,
        responded_at,
        business_seconds,
        target_seconds,
        business_seconds <= target_seconds as is_within_target,
        greatest(business_seconds - target_seconds, 0) as seconds_late,
        loaded_at
    from targeted
)

select * from final
{{ in_contact_order() }}
