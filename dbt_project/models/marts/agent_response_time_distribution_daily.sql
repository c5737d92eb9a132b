-- How many responses each agent gave in each number of seconds, per local day of the response,
-- business number and whether it was the conversation's first response: the distribution the
-- metrics API takes each agent's exact medians and percentiles of over any period.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["responded_date >= (select first_day from intermediate.days_this_run)"],
        on_schema_change='fail',
        indexes=[{'columns': ['responded_date']}],
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
        where responded_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

final as (
    select
        agent_id,
        business_phone_number_id,
        response_seconds,
        count(*) as responses,
        coalesce(is_first_response, false) as is_first_response,
        responded_date
    from responses
    group by
        responded_date,
        agent_id,
        business_phone_number_id,
        coalesce(is_first_response, false),
        response_seconds
)

select * from final
