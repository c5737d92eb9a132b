-- Every opening interval of every business number as real instants, for each local day the
-- waits span. Local times become instants in the reporting time zone, so DST changes shift them
-- correctly (a 09:00 opening is 09:00 local on both sides of the change).
with

business_hours as (
    select * from {{ ref('business_hours') }}
),

waits as (
    select * from {{ ref('int_waits_paired') }}
),

bounds as (
    select
        ({{ to_reporting_time('min(waiting_since)') }})::date - 1 as first_day,
        ({{ to_reporting_time('max(coalesce(responded_at, waiting_since))') }})::date
        + 1 as last_day
    from waits
),

days as (
    select day_series.series_day::date as local_date
    from bounds
    cross join lateral generate_series(
        bounds.first_day, bounds.last_day, interval '1 day'
    ) as day_series (series_day)
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
