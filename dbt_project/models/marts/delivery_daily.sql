-- Delivery and read rates of outbound messages by the local day they were sent.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["activity_date >= (select first_day from intermediate.days_this_run)"],
        on_schema_change='fail',
        indexes=[{'columns': ['activity_date']}],
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
        sent_date as activity_date,
        count(*) as messages_sent,
        count(*) filter (where is_delivered) as messages_delivered,
        count(*) filter (where is_read) as messages_read,
        count(*) filter (where is_failed) as messages_failed,
        count(*) filter (where is_delivered)::double precision
        / count(*) as delivery_rate,
        count(*) filter (where is_read)::double precision
        / nullif(count(*) filter (where is_delivered), 0) as read_rate,
        percentile_cont(0.5) within group (
            order by seconds_to_deliver
        ) as median_seconds_to_deliver,
        percentile_cont(0.5) within group (order by seconds_to_read) as median_seconds_to_read
    from message_delivery
    group by sent_date
)

select * from final
