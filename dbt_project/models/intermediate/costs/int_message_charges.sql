-- One row per outbound message that Meta priced (a status carrying its pricing object): whether
-- it is charged and how it counts. Meta charges a message once, when it is delivered (per-message
-- pricing since July 2025); every status repeats the pricing, and a status may be missing or
-- arrive late. So a message counts on its first billable status (is_billable), at that status's
-- time, category and pricing type; a message with no billable status is free (a service reply
-- in the customer-service window, a template in a free entry point window) and counts on its
-- first priced status. The market is the contact's (their region, seed pricing_markets).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["message_id = any(array(select message_id from intermediate.messages_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['message_id']}, {'columns': ['counted_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
messages_this_run as (
    select * from {{ ref('messages_this_run') }}
),

status_updates as (
    select * from {{ ref('stg_whatsapp__status_updates') }}
    where
        (is_billable is not null or pricing_category is not null)
        {% if is_incremental() %}
            -- An incremental build recomputes the messages that changed (messages_this_run).
            and message_id = any(array(select messages_this_run.message_id from messages_this_run))
        {% endif %}
),

markets as (
    select * from {{ ref('pricing_markets') }}
),

-- The status a message counts on: its first billable one, else its first priced one. Statuses
-- of one instant in their lifecycle's order, so that every build picks the same one.
counted as (
    select distinct on (message_id)
        message_id,
        business_phone_number_id,
        coalesce(is_billable, false) as is_charged,
        pricing_category,
        pricing_type,
        pricing_model,
        occurred_at as counted_at
    from status_updates
    order by
        message_id asc,
        coalesce(is_billable, false) desc,
        occurred_at asc,
        array_position(array['sent', 'delivered', 'read', 'failed', 'deleted'], status) asc
),

-- The contact's region, as any status of the message names it.
regions as (
    select
        message_id,
        max(contact_region) as contact_region,
        max(loaded_at) as loaded_at
    from status_updates
    group by message_id
),

final as (
    select
        counted.message_id,
        counted.business_phone_number_id,
        counted.is_charged,
        counted.pricing_category,
        counted.pricing_type,
        counted.pricing_model,
        regions.contact_region,
        coalesce(markets.market, 'Other') as market,
        counted.counted_at,
        {{ to_reporting_time('counted.counted_at') }}::date as counted_date,
        regions.loaded_at
    from counted
    inner join regions on counted.message_id = regions.message_id
    left join markets on upper(regions.contact_region) = markets.region
)

select * from final
