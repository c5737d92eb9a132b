-- Every opening interval of every business number as real instants, for each local day the
-- messages (and so the waits) span. Local times become instants in the reporting time zone, so
-- DST changes shift them correctly (a 09:00 opening is 09:00 local on both sides of the change).
with

business_hours as (
    select * from {{ ref('business_hours') }}
),

-- Waits start and end at messages: the messages' local days bound them, read from the ends of
-- the index on occurred_date rather than from every wait.
messages as (
    select * from {{ ref('int_messages_unioned') }}
),

bounds as (
    select
        min(occurred_date) - 1 as first_day,
        max(occurred_date) + 1 as last_day
    from messages
),

-- A set-returning function in the select list, not a lateral join: models run with nested
-- loops disabled (dbt_project.yml), which would turn the bounds' index look-ups into a scan.
days as (
    select
        generate_series(
            bounds.first_day, bounds.last_day, interval '1 day'
        )::date as local_date
    from bounds
),

intervals as (
    select
        business_hours.business_phone_number_id,
        (days.local_date + business_hours.opens_at)
        at time zone '{{ var("reporting_timezone") }}' as opens_at,
        (
            days.local_date
            + case when business_hours.closes_at <= business_hours.opens_at then 1 else 0 end
            + business_hours.closes_at
        ) at time zone '{{ var("reporting_timezone") }}' as closes_at
    from days
    inner join business_hours
        on extract(isodow from days.local_date) = business_hours.day_of_week
)

select * from intervals
