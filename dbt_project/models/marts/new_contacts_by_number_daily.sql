-- New contacts per business number and local day: the contacts whose first message to that
-- number was that day. The metrics API's contact growth for one number adds these up, where it
-- would otherwise group every row of business_contacts per request. A table rebuilt every
-- build: one pass over business_contacts, as contact_growth_daily makes.
with

business_contacts as (
    select * from {{ ref('business_contacts') }}
),

final as (
    select
        business_phone_number_id,
        first_seen_date,
        count(*) as new_contacts
    from business_contacts
    where business_phone_number_id is not null
    group by business_phone_number_id, first_seen_date
)

select * from final
