-- Per agent and local day of the response: how many waits they answered, how many were a
-- conversation's first response, how many conversations they handled, and how fast.
-- Replies known only from Meta's statuses carry no agent: they are grouped as 'unattributed'.
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
        where responded_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

final as (
    select
        coalesce(agent_id, 'unattributed') as agent_id,
        responded_date as activity_date,
        count(*) as responses,
        count(*) filter (where is_first_response) as first_responses,
        count(distinct conversation_id) as conversations_handled,
        avg(response_seconds) as avg_response_seconds,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) as median_response_seconds,
        percentile_cont(0.9) within group (order by response_seconds) as p90_response_seconds,
        avg(response_seconds) filter (
            where is_first_response
        ) as avg_first_response_seconds,
        percentile_cont(0.5) within group (
            order by response_seconds
        ) filter (where is_first_response) as median_first_response_seconds,
        avg(business_response_seconds) as avg_business_response_seconds,
        percentile_cont(0.5) within group (
            order by business_response_seconds
        ) as median_business_response_seconds,
        percentile_cont(0.9) within group (
            order by business_response_seconds
        ) as p90_business_response_seconds
    from responses
    group by coalesce(agent_id, 'unattributed'), responded_date
)

select * from final
