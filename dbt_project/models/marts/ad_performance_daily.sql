-- What each click-to-WhatsApp ad brought, per local day its conversations opened and business
-- number: conversations, new and returning contacts, answered, the median first response, and
-- the outbound and free entry point messages. One conversation's figures: ad_conversations.
-- Incremental by day: a conversation's figures change with its own messages, while it is open
-- (from days_this_run's first day on), and with the free entry point messages of the 72 hours
-- after it opened (from three days before).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["activity_date >= (select first_day - 3 from intermediate.days_this_run)"],
        on_schema_change='fail',
        indexes=[{'columns': ['activity_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
days_this_run as (
    select * from {{ ref('days_this_run') }}
),

conversations as (
    select * from {{ ref('ad_conversations') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the days above.
        where opened_date >= (select days_this_run.first_day - 3 from days_this_run)
    {% endif %}
),

final as (
    select
        opened_date as activity_date,
        business_phone_number_id,
        source_id,
        source_type,
        -- An ad's headline and link as its latest conversation shows them.
        (array_agg(headline order by opened_at desc, conversation_id desc))[1] as headline,
        (array_agg(source_url order by opened_at desc, conversation_id desc))[1] as source_url,
        count(*) as conversations,
        count(*) filter (where is_new_contact) as new_contacts,
        count(*) filter (where not is_new_contact) as returning_contacts,
        count(*) filter (where is_answered) as conversations_answered,
        sum(outbound_messages)::bigint as outbound_messages,
        sum(free_entry_point_messages)::bigint as free_entry_point_messages,
        count(*) filter (where is_answered)::double precision / count(*) as answer_rate,
        percentile_cont(0.5) within group (
            order by first_response_seconds
        ) as median_first_response_seconds
    from conversations
    group by opened_date, business_phone_number_id, source_id, source_type
)

select * from final
