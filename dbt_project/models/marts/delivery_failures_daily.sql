-- Failed outbound messages by the local day they were sent and the error that failed them.
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
        coalesce(error_code, -1) as error_code,
        coalesce(max(error_title), 'unknown') as error_title,
        count(*) as failures
    from message_delivery
    where is_failed
    group by sent_date, coalesce(error_code, -1)
)

select * from final
