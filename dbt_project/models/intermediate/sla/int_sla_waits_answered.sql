-- Every answered wait (responses) against the response time promised for it (seed
-- sla_targets), in the business number's opening hours (business_response_seconds). A wait is
-- due a first response (first_response_minutes) when nobody had answered the conversation it
-- started in before its reply, even if the reply came after that conversation's window
-- (responses.is_due_first_response); any other wait is due a next response
-- (next_response_minutes). A number without targets of its own has the '*' row's. A view: a
-- filter on the day or the contact reaches responses' indexes, and no copy of responses is
-- written at each build.
{{ config(materialized='view') }}

with

responses as (
    select * from {{ ref('responses') }}
),

targets as (
    select * from {{ ref('sla_targets') }}
),

targeted as (
    select
        responses.response_message_id,
        responses.contact_id,
        responses.conversation_id,
        responses.agent_id,
        responses.business_phone_number_id,
        responses.is_due_first_response,
        responses.activity_date,
        responses.waiting_since,
        responses.responded_at,
        responses.business_response_seconds as business_seconds,
        60 * case
            when responses.is_due_first_response
                then coalesce(own.first_response_minutes, fallback.first_response_minutes)
            else coalesce(own.next_response_minutes, fallback.next_response_minutes)
        end as target_seconds,
        responses.loaded_at
    from responses
    left join targets as own
        on responses.business_phone_number_id = own.business_phone_number_id
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
            when is_due_first_response then 'first_response' else 'next_response'
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
