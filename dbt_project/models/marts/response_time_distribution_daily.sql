-- How many responses took each number of seconds, per local day the wait started, business
-- number and whether it was the conversation's first response: the distribution the metrics
-- API takes exact medians and percentiles of over any period, from far fewer rows than
-- responses (replies are timed in whole seconds, and the same times recur).
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

responses as (
    select * from {{ ref('responses') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the days from the first this run changed on.
        where activity_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

final as (
    select
        business_phone_number_id,
        response_seconds,
        count(*) as responses,
        coalesce(is_first_response, false) as is_first_response,
        activity_date
    from responses
    group by
        activity_date,
        business_phone_number_id,
        coalesce(is_first_response, false),
        response_seconds
)

select * from final
