-- When the traffic peaks: inbound messages (each once, as int_messages_unioned keeps them) per
-- local day and hour, across business numbers (inbound_traffic_hourly splits them by number).
with

inbound_traffic_hourly as (
    select * from {{ ref('inbound_traffic_hourly') }}
),

final as (
    select
        activity_date,
        hour_of_day,
        day_of_week,
        sum(messages_received)::bigint as messages_received
    from inbound_traffic_hourly
    group by activity_date, hour_of_day, day_of_week
)

select * from final
