-- The conversations each agent answered in, counted by local day of the answer, with the
-- previous day the agent answered in the same conversation (in it at all, and under the same
-- business number): a conversation counts once in a period, on its first day in it, which is
-- a day whose previous one falls before the period. So the metrics API counts the
-- conversations an agent handled over any period exactly, from a few rows per agent and day.
-- A table rebuilt every build: a previous day can change with any response before it.
with

responses as (
    select * from {{ ref('responses') }}
),

answered_days as (
    select distinct
        agent_id,
        business_phone_number_id,
        conversation_id,
        responded_date
    from responses
    where conversation_id is not null
),

with_previous_day as (
    select
        agent_id,
        business_phone_number_id,
        responded_date,
        -- Several numbers on one day: the later rows' previous day is that day, so they never
        -- count a second time across numbers.
        lag(responded_date) over (
            partition by agent_id, conversation_id
            order by responded_date, business_phone_number_id
        ) as previous_date,
        lag(responded_date) over (
            partition by agent_id, business_phone_number_id, conversation_id
            order by responded_date
        ) as previous_date_for_number
    from answered_days
),

final as (
    select
        agent_id,
        business_phone_number_id,
        count(*) as conversations,
        responded_date,
        previous_date,
        previous_date_for_number
    from with_previous_day
    group by
        agent_id,
        business_phone_number_id,
        responded_date,
        previous_date,
        previous_date_for_number
)

select * from final
