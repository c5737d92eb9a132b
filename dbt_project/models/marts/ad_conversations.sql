-- One row per conversation opened from a click-to-WhatsApp ad (or a Facebook post's WhatsApp
-- button): the contact's message that opened it carried Meta's referral, which arrives on that
-- first message only. What the conversation brought: whether the contact was new (this was the
-- first message they ever wrote to the business), its first response, its messages, and the
-- messages Meta priced as free entry point (free for 72 hours after the ad's conversation opens;
-- counted until the next conversation from an ad).
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['contact_id']}, {'columns': ['opened_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

messages as (
    select * from {{ ref('int_messages_unioned') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the contacts whose messages changed
        -- (contacts_this_run), whole.
        where contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
    {% endif %}
),

-- The ad of each contact's message that carries one (live messages only: a backfill opens no
-- conversation).
referrals as (
    select
        contact_id,
        occurred_at,
        max(referral_source_id) as source_id,
        max(referral_source_type) as source_type,
        max(referral_source_url) as source_url,
        max(referral_headline) as headline,
        max(referral_ctwa_clid) as ctwa_clid
    from messages
    where direction = 'inbound' and referral_source_id is not null and not is_backfill
    group by contact_id, occurred_at
),

-- Only the conversations of contacts who came from an ad can be from one.
conversations as (
    select * from {{ ref('conversations') }}
    {% if is_incremental() %}
        where contact_id = any(array(select distinct referrals.contact_id from referrals))
    {% endif %}
),

-- The first message each contact ever wrote (a backfilled one too).
first_inbound as (
    select
        contact_id,
        min(occurred_at) as first_inbound_at
    from messages
    where direction = 'inbound'
    group by contact_id
),

from_ads as (
    select
        conversations.*,
        referrals.source_id,
        referrals.source_type,
        referrals.source_url,
        referrals.headline,
        referrals.ctwa_clid,
        conversations.opened_at <= first_inbound.first_inbound_at as is_new_contact,
        -- Free entry point messages count here until the contact's next conversation from an ad.
        least(
            conversations.opened_at + interval '72 hours',
            lead(conversations.opened_at) over (
                partition by conversations.contact_id order by conversations.opened_at asc
            )
        ) as free_window_ends_at
    from conversations
    inner join referrals
        on
            conversations.contact_id = referrals.contact_id
            and conversations.opened_at = referrals.occurred_at
    inner join first_inbound on conversations.contact_id = first_inbound.contact_id
),

-- The outbound messages in each ad conversation's free window, then those Meta priced as free
-- entry point (looked up by message: few, among many charges).
in_free_window as (
    select
        from_ads.conversation_id,
        messages.message_id
    from from_ads
    inner join messages
        on
            from_ads.contact_id = messages.contact_id
            and messages.direction = 'outbound'
            and from_ads.opened_at <= messages.occurred_at
            and from_ads.free_window_ends_at > messages.occurred_at
),

charges as (
    select * from {{ ref('int_message_charges') }}
    where
        pricing_type = 'free_entry_point'
        and message_id = any(array(select in_free_window.message_id from in_free_window))
),

free_entry_point as (
    select
        in_free_window.conversation_id,
        count(*) as free_entry_point_messages
    from in_free_window
    inner join charges on in_free_window.message_id = charges.message_id
    group by in_free_window.conversation_id
),

final as (
    select
        from_ads.conversation_id,
        from_ads.contact_id,
        from_ads.business_phone_number_id,
        from_ads.source_id,
        from_ads.ctwa_clid,
        from_ads.source_type,
        from_ads.source_url,
        from_ads.headline,
        from_ads.first_response_agent_id,
        from_ads.inbound_messages,
        from_ads.outbound_messages,
        coalesce(free_entry_point.free_entry_point_messages, 0) as free_entry_point_messages,
        from_ads.first_response_seconds,
        from_ads.is_new_contact,
        from_ads.is_answered,
        from_ads.opened_date,
        from_ads.opened_at,
        from_ads.first_response_at,
        from_ads.closed_at,
        from_ads.loaded_at
    from from_ads
    left join free_entry_point on from_ads.conversation_id = free_entry_point.conversation_id
)

select * from final
{{ in_contact_order() }}
