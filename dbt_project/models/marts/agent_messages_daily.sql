-- Outbound messages per sending agent, local day sent and business number, and how many were
-- delivered and read: the metrics API's agents' sent side over any period.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["sent_date >= (select first_day from intermediate.days_this_run)"],
        on_schema_change='fail',
        indexes=[{'columns': ['sent_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
days_this_run as (
    select * from {{ ref('days_this_run') }}
),

message_delivery as (
    select * from {{ ref('message_delivery') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the days from the first this run changed on.
        where sent_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

final as (
    select
        agent_id,
        business_phone_number_id,
        count(*) as messages_sent,
        count(*) filter (where is_delivered) as messages_delivered,
        count(*) filter (where is_read) as messages_read,
        sent_date
    from message_delivery
    group by sent_date, agent_id, business_phone_number_id
)

select * from final
