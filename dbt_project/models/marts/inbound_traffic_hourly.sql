-- When the traffic peaks, per business number: inbound messages per local day and hour. The
-- metrics API filters it by number and sums any date range; hourly_traffic holds the same counts
-- across numbers.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
    where {{ only_changed_days() }}
),

inbound as (
    select
        business_phone_number_id,
        {{ to_reporting_time('occurred_at') }} as local_time
    from messages
    where direction = 'inbound'
),

final as (
    select
        business_phone_number_id,
        local_time::date as activity_date,
        extract(hour from local_time)::integer as hour_of_day,
        extract(isodow from local_time)::integer as day_of_week,
        count(*) as messages_received
    from inbound
    group by 1, 2, 3, 4
)

select * from final
