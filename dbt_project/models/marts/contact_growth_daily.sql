-- How fast the contact base grows: first contacts per local day, every day from the first to
-- the last day with inbound traffic, zero-filled.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
),

inbound as (
    select
        contact_id,
        {{ to_reporting_time('occurred_at') }}::date as activity_date
    from messages
    where direction = 'inbound'
),

first_contacts as (
    select
        contact_id,
        min(activity_date) as activity_date
    from inbound
    group by contact_id
),

new_contacts_per_day as (
    select
        activity_date,
        count(*) as new_contacts
    from first_contacts
    group by activity_date
),

bounds as (
    select
        min(activity_date) as first_day,
        max(activity_date) as last_day
    from inbound
),

days as (
    select day_series.series_day::date as activity_date
    from bounds
    cross join lateral generate_series(
        bounds.first_day, bounds.last_day, interval '1 day'
    ) as day_series (series_day)
),

zero_filled as (
    select
        days.activity_date,
        coalesce(new_contacts_per_day.new_contacts, 0) as new_contacts
    from days
    left join new_contacts_per_day
        on days.activity_date = new_contacts_per_day.activity_date
),

cumulative as (
    select
        activity_date,
        new_contacts,
        sum(new_contacts) over (
            order by activity_date rows between unbounded preceding and current row
        )::bigint as cumulative_contacts
    from zero_filled
),

final as (
    select
        activity_date,
        new_contacts,
        cumulative_contacts,
        -- Growth relative to the contacts known before the day; undefined when there were none.
        new_contacts::double precision
        / nullif(cumulative_contacts - new_contacts, 0) as growth_rate
    from cumulative
)

select * from final
