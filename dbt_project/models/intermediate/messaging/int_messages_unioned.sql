-- Every message of every contact, inbound and outbound, each once, with the time it counts at
-- and one contact: the contact its identifier belongs to (int_contact_identities: one contact
-- across a number change and a business-scoped user id). Meta's system messages (a number
-- change, say) are no one's message, and an edit or a deletion of a message (type edit or
-- revoke, as message echoes report them) is no new one: they are left out. is_backfill marks a
-- past message known only from a history backfill: counted in contacts, left out of response,
-- SLA and traffic figures (docs/events.md, "Coexistence"). An outbound message keeps the
-- template and campaign its sender named; an inbound one the message it replies to
-- (context_message_id) and the ad it came from (referral_*, on a conversation's first message).
-- An outbound message is known from the CRM's message_sent and/or Meta's status notifications;
-- it counts once, at the earliest time any source reports for it. Both directions are computed
-- here, in one model, so that the models that read them wait for one build, not two. Each row
-- depends on its own message's events only: incremental builds recompute the touched messages.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["message_id = any(array(select message_id from intermediate.messages_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['message_id']}, {'columns': ['contact_id']}, {'columns': ['occurred_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
messages_this_run as (
    select * from {{ ref('messages_this_run') }}
),

messages as (
    select * from {{ ref('stg_whatsapp__messages') }}
    where
        coalesce(message_type, '') not in ('system', 'edit', 'revoke')
        {% if is_incremental() %}
            -- An incremental build recomputes the messages that changed (messages_this_run).
            and message_id = any(array(select messages_this_run.message_id from messages_this_run))
        {% endif %}
),

identities as (
    select * from {{ ref('int_contact_identities') }}
),

status_updates as (
    select * from {{ ref('stg_whatsapp__status_updates') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the messages that changed (messages_this_run).
        where message_id = any(array(select messages_this_run.message_id from messages_this_run))
    {% endif %}
),

inbound as (
    select
        message_id,
        contact_id,
        null as agent_id,
        business_phone_number_id,
        'inbound' as direction,
        null::boolean as is_reported_sent,
        coalesce(is_backfill, false) as is_backfill,
        message_type,
        context_message_id,
        null as template_name,
        null as template_language,
        null as template_category,
        null as campaign_id,
        null as campaign_name,
        referral_source_type,
        referral_source_id,
        referral_source_url,
        referral_headline,
        referral_ctwa_clid,
        occurred_at,
        loaded_at
    from messages
    where direction = 'inbound'
),

outbound_reports as (
    select
        message_id,
        contact_id,
        agent_id,
        business_phone_number_id,
        source,
        delivery_id,
        coalesce(is_backfill, false) as is_backfill,
        message_type,
        template_name,
        template_language,
        template_category,
        campaign_id,
        campaign_name,
        occurred_at,
        loaded_at,
        true as is_reported_sent
    from messages
    where direction = 'outbound'

    union all

    select
        message_id,
        contact_id,
        null as agent_id,
        business_phone_number_id,
        source,
        delivery_id,
        false as is_backfill,
        null as message_type,
        null as template_name,
        null as template_language,
        null as template_category,
        null as campaign_id,
        null as campaign_name,
        occurred_at,
        loaded_at,
        false as is_reported_sent
    from status_updates
),

-- One row per outbound message. The CRM and Meta may spell one number differently: the message
-- counts under the contact of its first report by the worker's precedence
-- (worker.processing.precedence): Meta's before the CRM's, a live report before a backfill's,
-- then the earlier occurred_at, then the smaller delivery_id. It is a backfill if every report
-- of it is (a status is live).
outbound as (
    select
        outbound_reports.message_id,
        (array_agg(
            outbound_reports.contact_id
            order by
                outbound_reports.source != 'whatsapp' asc,
                outbound_reports.is_backfill asc,
                outbound_reports.occurred_at asc,
                outbound_reports.delivery_id asc,
                outbound_reports.contact_id asc
        ))[1] as contact_id,
        max(outbound_reports.agent_id) as agent_id,
        max(outbound_reports.business_phone_number_id) as business_phone_number_id,
        'outbound' as direction,
        bool_or(outbound_reports.is_reported_sent) as is_reported_sent,
        bool_and(outbound_reports.is_backfill) as is_backfill,
        -- What the sender said it sent: a template, in a campaign (the CRM's report).
        max(outbound_reports.message_type) as message_type,
        null as context_message_id,
        max(outbound_reports.template_name) as template_name,
        max(outbound_reports.template_language) as template_language,
        max(outbound_reports.template_category) as template_category,
        max(outbound_reports.campaign_id) as campaign_id,
        max(outbound_reports.campaign_name) as campaign_name,
        null as referral_source_type,
        null as referral_source_id,
        null as referral_source_url,
        null as referral_headline,
        null as referral_ctwa_clid,
        min(outbound_reports.occurred_at) as occurred_at,
        max(outbound_reports.loaded_at) as loaded_at
    from outbound_reports
    -- Statuses only ever describe outbound messages; an id seen inbound is not one.
    where
        not exists (
            select 1
            from inbound
            where inbound.message_id = outbound_reports.message_id
        )
    group by outbound_reports.message_id
),

unioned as (
    select * from inbound
    union all
    select * from outbound
),

final as (
    select
        unioned.message_id,
        coalesce(identities.contact_id, unioned.contact_id) as contact_id,
        unioned.agent_id,
        unioned.business_phone_number_id,
        unioned.direction,
        unioned.is_reported_sent,
        unioned.is_backfill,
        unioned.message_type,
        unioned.context_message_id,
        unioned.template_name,
        unioned.template_language,
        unioned.template_category,
        unioned.campaign_id,
        unioned.campaign_name,
        unioned.referral_source_type,
        unioned.referral_source_id,
        unioned.referral_source_url,
        unioned.referral_headline,
        unioned.referral_ctwa_clid,
        unioned.occurred_at,
        {{ to_reporting_time('unioned.occurred_at') }}::date as occurred_date,
        unioned.loaded_at
    from unioned
    left join identities on unioned.contact_id = identities.identifier
)

select * from final
{{ in_contact_order() }}
