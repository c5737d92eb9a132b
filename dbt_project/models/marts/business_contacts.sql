-- Who writes to which business number, and since when: one row per contact and business number
-- they wrote to. The metrics API counts new contacts per number from it; contact_growth_daily
-- counts first contacts across numbers from it. Incremental per contact, like the models it
-- reads.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

messages as (
    select * from {{ ref('int_messages_unioned') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the contacts whose messages changed
        -- (contacts_this_run), whole.
        where contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
    {% endif %}
),

inbound as (
    select
        contact_id,
        business_phone_number_id,
        occurred_at,
        loaded_at
    from messages
    where direction = 'inbound'
),

per_number as (
    select
        contact_id,
        business_phone_number_id,
        count(*) as inbound_messages,
        min(occurred_at) as first_seen_at,
        max(occurred_at) as last_seen_at,
        max(loaded_at) as loaded_at
    from inbound
    group by contact_id, business_phone_number_id
),

final as (
    select
        per_number.contact_id,
        per_number.business_phone_number_id,
        per_number.inbound_messages,
        {{ to_reporting_time('per_number.first_seen_at') }}::date as first_seen_date,
        per_number.first_seen_at,
        per_number.last_seen_at,
        per_number.loaded_at
    from per_number
)

select * from final
{{ in_contact_order() }}
