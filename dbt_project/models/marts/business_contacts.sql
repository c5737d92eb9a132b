-- Who writes to which business number, and since when: one row per contact and business number
-- they wrote to. The metrics API counts new contacts per number from it; contact_growth_daily
-- counts first contacts across numbers.
with

messages as (
    select * from {{ ref('int_messages_unioned') }}
),

inbound as (
    select
        contact_id,
        business_phone_number_id,
        occurred_at
    from messages
    where direction = 'inbound'
),

final as (
    select
        contact_id,
        business_phone_number_id,
        count(*) as inbound_messages,
        {{ to_reporting_time('min(occurred_at)') }}::date as first_seen_date,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at
    from inbound
    group by contact_id, business_phone_number_id
)

select * from final
