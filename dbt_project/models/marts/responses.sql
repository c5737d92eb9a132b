-- One row per answered wait: who answered whom, how long the contact waited (in all and in the
-- business number's opening hours), and whether it was its conversation's first response.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}, {'columns': ['activity_date']}, {'columns': ['responded_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

waits as (
    select * from {{ ref('int_waits_paired') }}
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
        -- Nobody had answered the conversation before this reply, even if it came after the
        -- window: the reply an SLA's first-response target applies to.
        coalesce(
            conversations.first_response_at is null
            or conversations.first_response_at >= waits.responded_at,
            false
        ) as is_due_first_response,
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

longest_interval as (
    select coalesce(max(closes_at - opens_at), interval '0') as length
    from open_intervals
),

-- A number without hours of its own (or an unknown one) keeps the default ('*') hours. Each
-- wait is matched by day, not against every interval: an interval that overlaps it opens on a
-- UTC day from (its start less the longest interval) to its end, so it is found on exactly one
-- of those days (its own opening day), by an equi-join.
hours_keyed as (
    select
        answered.response_message_id,
        answered.waiting_since,
        answered.responded_at,
        coalesce(numbers_with_own_hours.business_phone_number_id, '*') as hours_key,
        generate_series(
            ((answered.waiting_since - longest_interval.length) at time zone 'UTC')::date,
            (answered.responded_at at time zone 'UTC')::date,
            interval '1 day'
        )::date as opening_day
    from answered
    cross join longest_interval
    left join numbers_with_own_hours
        on answered.business_phone_number_id = numbers_with_own_hours.business_phone_number_id
),

-- Only the intervals that overlap a wait count: a wait wholly outside opening hours has none,
-- and counts 0 (least() and greatest() would pass a missing interval's nulls over).
open_time as (
    select
        hours_keyed.response_message_id,
        sum(
            extract(
                epoch from
                least(hours_keyed.responded_at, open_intervals.closes_at)
                - greatest(hours_keyed.waiting_since, open_intervals.opens_at)
            )
        )::double precision as business_response_seconds
    from hours_keyed
    inner join open_intervals
        on
            hours_keyed.hours_key = open_intervals.business_phone_number_id
            and hours_keyed.opening_day = (open_intervals.opens_at at time zone 'UTC')::date
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
        coalesce(open_time.business_response_seconds, 0) as business_response_seconds,
        answered.is_first_response,
        answered.is_due_first_response,
        {{ to_reporting_time('answered.waiting_since') }}::date as activity_date,
        {{ to_reporting_time('answered.responded_at') }}::date as responded_date,
        answered.waiting_since,
        answered.responded_at,
        answered.loaded_at
    from answered
    left join open_time
        on answered.response_message_id = open_time.response_message_id
)

select * from final
{{ in_contact_order() }}
