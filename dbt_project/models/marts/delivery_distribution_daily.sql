-- How many outbound messages had each outcome and each time to deliver and to read, per local
-- day they were sent and business number: what the metrics API counts and takes exact medians
-- of over any period, from far fewer rows than message_delivery (statuses are timed in whole
-- seconds, and the same times recur).
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
        business_phone_number_id,
        seconds_to_deliver,
        seconds_to_read,
        count(*) as messages,
        is_delivered,
        is_read,
        is_failed,
        sent_date
    from message_delivery
    group by
        sent_date,
        business_phone_number_id,
        is_delivered,
        is_read,
        is_failed,
        seconds_to_deliver,
        seconds_to_read
)

select * from final
