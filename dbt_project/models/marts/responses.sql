-- One row per answered wait: who answered whom, how long the contact waited (in all and in the
-- business number's opening hours), and whether it was its conversation's first response.
with

waits as (
    select * from {{ ref('int_waits_paired') }}
    where {{ only_touched_contacts('contact_id') }}
),

conversations as (
    select * from {{ ref('int_conversations_windowed') }}
    where {{ only_touched_contacts('contact_id') }}
),

open_intervals as (
    select * from {{ ref('int_business_hours_expanded') }}
),

answered as (
    select
        waits.response_message_id,
        waits.contact_id,
        conversations.conversation_id,
        waits.agent_id,
        conversations.business_phone_number_id,
        waits.inbound_messages,
        waits.response_seconds,
        coalesce(
            waits.response_message_id = conversations.first_response_message_id, false
        ) as is_first_response,
        waits.waiting_since,
        waits.responded_at,
        -- Its wait's messages and its conversation's: a longer conversation changes the row.
        greatest(waits.loaded_at, conversations.loaded_at) as loaded_at
    from waits
    left join conversations
        on
            waits.contact_id = conversations.contact_id
            and waits.waiting_since >= conversations.opened_at
            and waits.waiting_since < conversations.closed_at
    where waits.is_answered
),

numbers_with_own_hours as (
    select distinct business_phone_number_id
    from open_intervals
    where business_phone_number_id != '*'
),

-- A number without hours of its own (or an unknown one) keeps the default ('*') hours.
hours_keyed as (
    select
        answered.response_message_id,
        answered.waiting_since,
        answered.responded_at,
        coalesce(numbers_with_own_hours.business_phone_number_id, '*') as hours_key
    from answered
    left join numbers_with_own_hours
        on answered.business_phone_number_id = numbers_with_own_hours.business_phone_number_id
),

open_time as (
    select
        hours_keyed.response_message_id,
        coalesce(
            sum(
                extract(
                    epoch from
                    least(hours_keyed.responded_at, open_intervals.closes_at)
                    - greatest(hours_keyed.waiting_since, open_intervals.opens_at)
                )
            ),
            0
        )::double precision as business_response_seconds
    from hours_keyed
    left join open_intervals
        on
            hours_keyed.hours_key = open_intervals.business_phone_number_id
            and hours_keyed.responded_at > open_intervals.opens_at
            and hours_keyed.waiting_since < open_intervals.closes_at
    group by hours_keyed.response_message_id
),

final as (
    select
        answered.response_message_id,
        answered.contact_id,
        answered.conversation_id,
        answered.agent_id,
        answered.business_phone_number_id,
        answered.inbound_messages,
        answered.response_seconds,
        open_time.business_response_seconds,
        answered.is_first_response,
        {{ to_reporting_time('answered.waiting_since') }}::date as activity_date,
        {{ to_reporting_time('answered.responded_at') }}::date as responded_date,
        answered.waiting_since,
        answered.responded_at,
        answered.loaded_at
    from answered
    inner join open_time
        on answered.response_message_id = open_time.response_message_id
)

select * from final
