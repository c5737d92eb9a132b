-- The days each agent answered in each conversation: one row per agent, conversation, business
-- number and local day of an answer, with the previous day the agent answered in the same
-- conversation (at all, and under the same number). agent_conversations_daily counts them by
-- day. Per contact (a conversation is one contact's): an incremental build recomputes the
-- contacts whose responses changed, whole, and records the days of the rows that changed, so
-- that agent_conversations_daily recomputes those days only.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}, {'columns': ['responded_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

responses as (
    select * from {{ ref('responses') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the contacts whose messages changed
        -- (contacts_this_run), whole.
        where contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
    {% endif %}
),

answered_days as (
    select
        contact_id,
        agent_id,
        business_phone_number_id,
        conversation_id,
        responded_date,
        max(loaded_at) as loaded_at
    from responses
    where conversation_id is not null
    group by contact_id, agent_id, business_phone_number_id, conversation_id, responded_date
),

final as (
    select
        contact_id,
        agent_id,
        business_phone_number_id,
        conversation_id,
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
        ) as previous_date_for_number,
        loaded_at
    from answered_days
)

select * from final
{{ in_contact_order() }}
