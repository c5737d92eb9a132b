-- The conversations each agent answered in, counted by local day of the answer, with the
-- previous day the agent answered in the same conversation (in it at all, and under the same
-- business number): a conversation counts once in a period, on its first day in it, which is
-- a day whose previous one falls before the period. So the metrics API counts the
-- conversations an agent handled over any period exactly, from a few rows per agent and day.
-- Recomputes the days whose rows of agent_conversation_days changed (a new answer changes the
-- previous day of the conversation's later rows, and those rows record their own days).
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

answered_days as (
    select * from {{ ref('agent_conversation_days') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the days from the first this run changed on.
        where responded_date >= (select days_this_run.first_day from days_this_run)
    {% endif %}
),

final as (
    select
        agent_id,
        business_phone_number_id,
        count(*) as conversations,
        responded_date,
        previous_date,
        previous_date_for_number
    from answered_days
    group by
        agent_id,
        business_phone_number_id,
        responded_date,
        previous_date,
        previous_date_for_number
)

select * from final
