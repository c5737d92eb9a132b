-- When the traffic peaks: inbound messages (each once, as int_messages_unioned keeps them) per
-- local day and hour.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
),

inbound as (
    select
        message_id,
        {{ to_reporting_time('occurred_at') }} as local_time
    from messages
    where direction = 'inbound'
),

final as (
    select
        local_time::date as activity_date,
        extract(hour from local_time)::integer as hour_of_day,
        extract(isodow from local_time)::integer as day_of_week,
        count(*) as messages_received
    from inbound
    group by 1, 2, 3
)

select * from final
