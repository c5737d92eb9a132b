-- Every change of a contact's marketing preference (Meta's user_preferences webhook: stop or
-- resume marketing messages), under the contact its identifier belongs to
-- (int_contact_identities). A table of few rows, read through their own index: not a view, which
-- the rebuild of int_contact_identities would drop (dbt drops a replaced table's dependants).

with

preferences as (
    select * from {{ ref('stg_whatsapp__user_preferences') }}
),

identities as (
    select * from {{ ref('int_contact_identities') }}
),

final as (
    select
        preferences.preference_update_id,
        coalesce(identities.contact_id, preferences.contact_id) as contact_id,
        preferences.business_phone_number_id,
        preferences.preference_category,
        preferences.preference,
        preferences.occurred_at,
        preferences.loaded_at
    from preferences
    left join identities on preferences.contact_id = identities.identifier
)

select * from final
