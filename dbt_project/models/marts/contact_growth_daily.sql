-- How fast the contact base grows: first contacts per local day, every day from the first to
-- the last day with inbound traffic, zero-filled. A contact is new on the first day they wrote
-- to any business number (business_contacts holds each contact's first and last message).
with

business_contacts as (
    select * from {{ ref('business_contacts') }}
),

-- One pass over business_contacts: each contact's first day and latest message, then the days.
first_contacts as (
    select
        contact_id,
        min(first_seen_date) as activity_date,
        max(last_seen_at) as last_seen_at
    from business_contacts
    group by contact_id
),

new_contacts_per_day as (
    select
        activity_date,
        count(*) as new_contacts,
        max(last_seen_at) as last_seen_at
    from first_contacts
    group by activity_date
),

bounds as (
    select
        min(activity_date) as first_day,
        ({{ to_reporting_time('max(last_seen_at)') }})::date as last_day
    from new_contacts_per_day
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
