-- One row per WhatsApp message, inbound (message_received) or outbound as the CRM reported it
-- (message_sent). Outbound messages known only from Meta's statuses are added downstream.
-- A reply names the message it answers (context_message_id); a CRM send may name its template
-- and campaign; a contact's message after a click-to-WhatsApp ad carries the ad (referral_*).
-- Only usable events, their values checked (base_whatsapp__events; the rest: excluded_events).
with

events as (
    select * from {{ ref('base_whatsapp__events') }}
    where exclusion_reason is null
),

messages as (
    select
        message_id,
        contact_id,
        delivery_id,
        event_id,
        agent_id,
        business_phone_number_id,
        case event_name
            when 'message_received' then 'inbound'
            else 'outbound'
        end as direction,
        message_type,
        context_message_id,
        template_name,
        template_language,
        template_category,
        campaign_id,
        campaign_name,
        referral_source_type,
        referral_source_id,
        referral_source_url,
        referral_headline,
        referral_ctwa_clid,
        contact_region,
        source,
        content_length,
        has_media,
        is_backfill,
        occurred_at,
        received_at,
        loaded_at
    from events
    where event_name in ('message_received', 'message_sent')
),

-- raw.events keeps one row per message id and event name; should a message id ever arrive under
-- both names, or twice under one (rows from before its unique key), one report is kept by the
-- worker's precedence (worker.processing.precedence): Meta's before the CRM's, a live report
-- before a history backfill's, then the earlier occurred_at, then the smaller delivery_id and
-- event_id. Each message counts once, under the contact of that report, however the sources
-- spell the number.
deduplicated as (
    select distinct on (message_id) *
    from messages
    order by
        message_id asc,
        source != 'whatsapp' asc,
        is_backfill asc,
        occurred_at asc,
        delivery_id asc,
        event_id asc
),

final as (
    select
        message_id,
        contact_id,
        delivery_id,
        agent_id,
        business_phone_number_id,
        direction,
        message_type,
        context_message_id,
        template_name,
        template_language,
        template_category,
        campaign_id,
        campaign_name,
        referral_source_type,
        referral_source_id,
        referral_source_url,
        referral_headline,
        referral_ctwa_clid,
        contact_region,
        source,
        content_length,
        has_media,
        is_backfill,
        occurred_at,
        received_at,
        loaded_at
    from deduplicated
)

select * from final
