-- What each click-to-WhatsApp ad brought, per local day its conversations opened and business
-- number: conversations, new and returning contacts, answered, the median first response, and
-- the outbound and free entry point messages. One conversation's figures: ad_conversations.
-- Incremental by day: the days from the first this run changed on (days_this_run), which hold
-- every conversation still open then, and the days of the ad conversations of the contacts
-- recomputed (contacts_this_run), whose free entry point messages may come later.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=[
            "activity_date >= (select first_day from intermediate.days_this_run)"
            " or activity_date = any(array(select opened_date from marts.ad_conversations"
            " where contact_id = any(array(select contact_id from intermediate.contacts_this_run))))"
        ],
        on_schema_change='fail',
        indexes=[{'columns': ['activity_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
days_this_run as (
    select * from {{ ref('days_this_run') }}
),

contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

ad_conversations as (
    select * from {{ ref('ad_conversations') }}
),

{% if is_incremental() %}
    recomputed_days as (
        select days_this_run.first_day as opened_date
        from days_this_run

        union

        select ad_conversations.opened_date
        from ad_conversations
        where
            ad_conversations.contact_id
            = any(array(select contacts_this_run.contact_id from contacts_this_run))
    ),
{% endif %}

conversations as (
    select * from ad_conversations
    {% if is_incremental() %}
        -- An incremental build recomputes the days above.
        where
            opened_date >= (select days_this_run.first_day from days_this_run)
            or opened_date = any(array(select recomputed_days.opened_date from recomputed_days))
    {% endif %}
),

final as (
    select
        opened_date as activity_date,
        business_phone_number_id,
        source_id,
        source_type,
        -- An ad's headline and link as its latest conversation shows them.
        (array_agg(headline order by opened_at desc))[1] as headline,
        (array_agg(source_url order by opened_at desc))[1] as source_url,
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
