-- Every wait still unanswered at the build, against the response time promised for it (seed
-- sla_targets), with the time it has waited so far in the business number's opening hours.
-- Rebuilt at every build: its figures grow with the clock.
--
-- Opening time between two instants is the difference of a running total: opening seconds
-- before t = (the length of every interval opened before t) - (what the last of them still
-- had to run after t). One sort of the open waits among the opening intervals gives it for
-- every wait and for now(), however long ago the wait started.
with

waits as (
    select * from {{ ref('int_waits_paired') }}
    where not is_answered
),

-- Only the waiting contacts' conversations, through the index on the contact.
conversations as (
    select * from {{ ref('int_conversations_windowed') }}
    where contact_id = any(array(select waits.contact_id from waits))
),

open_intervals as (
    select * from {{ ref('int_business_hours_expanded') }}
),

targets as (
    select * from {{ ref('sla_targets') }}
),

-- A wait in a conversation nobody has answered yet is due its first response.
open_waits as (
    select
        waits.contact_id,
        conversations.conversation_id,
        conversations.business_phone_number_id,
        conversations.first_response_message_id is null as is_due_first_response,
        waits.waiting_since
    from waits
    left join conversations
        on
            waits.contact_id = conversations.contact_id
            and waits.waiting_since >= conversations.opened_at
            and waits.waiting_since < conversations.closed_at
),

-- A number without hours of its own (or an unknown one) keeps the default ('*') hours.
numbers_with_own_hours as (
    select distinct business_phone_number_id
    from open_intervals
    where business_phone_number_id != '*'
),

keyed_waits as (
    select
        open_waits.*,
        coalesce(numbers_with_own_hours.business_phone_number_id, '*') as hours_key
    from open_waits
    left join numbers_with_own_hours
        on open_waits.business_phone_number_id = numbers_with_own_hours.business_phone_number_id
),

-- The intervals, each wait's start and now(), per hours key, in time order.
points as (
    select
        business_phone_number_id as hours_key,
        opens_at as point_at,
        extract(epoch from closes_at - opens_at) as interval_seconds,
        closes_at,
        'interval' as point_kind
    from open_intervals

    union all

    select distinct
        hours_key,
        waiting_since as point_at,
        0 as interval_seconds,
        null::timestamptz as closes_at,
        'wait' as point_kind
    from keyed_waits

    union all

    select distinct
        hours_key,
        {{ build_time() }} as point_at,
        0 as interval_seconds,
        null::timestamptz as closes_at,
        'now' as point_kind
    from keyed_waits
),

running as (
    select
        hours_key,
        point_at,
        point_kind,
        sum(interval_seconds) over up_to_here as opened_seconds,
        max(closes_at) over up_to_here as last_closes_at
    from points
    window up_to_here as (
        partition by hours_key order by point_at asc, point_kind asc rows unbounded preceding
    )
),

-- Opening seconds before each wait's start and before now.
open_seconds_before as (
    select
        hours_key,
        point_at,
        point_kind,
        opened_seconds
        - greatest(extract(epoch from last_closes_at - point_at), 0) as seconds_before
    from running
    where point_kind != 'interval'
),

waited as (
    select
        keyed_waits.contact_id,
        keyed_waits.conversation_id,
        keyed_waits.business_phone_number_id,
        keyed_waits.is_due_first_response,
        keyed_waits.waiting_since,
        coalesce(
            now_point.seconds_before - wait_point.seconds_before, 0
        )::double precision as business_seconds,
        60 * case
            when keyed_waits.is_due_first_response
                then coalesce(own.first_response_minutes, fallback.first_response_minutes)
            else coalesce(own.next_response_minutes, fallback.next_response_minutes)
        end as target_seconds
    from keyed_waits
    left join open_seconds_before as wait_point
        on
            keyed_waits.hours_key = wait_point.hours_key
            and keyed_waits.waiting_since = wait_point.point_at
            and wait_point.point_kind = 'wait'
    left join open_seconds_before as now_point
        on
            keyed_waits.hours_key = now_point.hours_key
            and now_point.point_kind = 'now'
    left join targets as own
        on keyed_waits.business_phone_number_id = own.business_phone_number_id
    left join targets as fallback
        on fallback.business_phone_number_id = '*'
),

final as (
    select
        contact_id,
        conversation_id,
        business_phone_number_id,
        case
            when is_due_first_response then 'first_response' else 'next_response'
        end as wait_kind,
        {{ to_reporting_time('waiting_since') }}::date as activity_date,
        waiting_since,
        business_seconds,
        target_seconds,
        business_seconds > target_seconds as is_breached,
        greatest(business_seconds - target_seconds, 0) as seconds_late
    from waited
)

select * from final
