-- One row per template or campaign message sent to a contact (the CRM named its template or its
-- campaign), with what it brought: its delivery (message_delivery), whether the contact replied
-- (wrote within 24 hours after it and before the next template sent to them), clicked (a button
-- or interactive reply whose context names this message, whenever it came), and stopped
-- marketing messages in that window (Meta's user_preferences webhook), and resumed them after.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["contact_id = any(array(select contact_id from intermediate.contacts_this_run))"],
        on_schema_change='fail',
        indexes=[
            {'columns': ['contact_id']},
            {'columns': ['message_id']},
            {'columns': ['sent_date']},
            {'columns': ['campaign_id']},
        ],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
contacts_this_run as (
    select * from {{ ref('contacts_this_run') }}
),

messages as (
    select * from {{ ref('int_messages_unioned') }}
    -- A history backfill's past messages count in contacts only (docs/events.md, "Coexistence").
    where
        is_backfill is not true
        {% if is_incremental() %}
            -- An incremental build recomputes the contacts whose messages changed
            -- (contacts_this_run), whole.
            and contact_id = any(array(select contacts_this_run.contact_id from contacts_this_run))
        {% endif %}
),

preferences as (
    select * from {{ ref('int_marketing_preferences') }}
    where preference_category = 'marketing_messages'
),

sends as (
    select
        message_id,
        contact_id,
        business_phone_number_id,
        template_name,
        template_language,
        template_category,
        campaign_id,
        campaign_name,
        occurred_at as sent_at,
        loaded_at
    from messages
    where direction = 'outbound' and (template_name is not null or campaign_id is not null)
),

message_delivery as (
    select * from {{ ref('message_delivery') }}
    where message_id = any(array(select sends.message_id from sends))
),

-- A send's attribution window: 24 hours, cut short by the next template sent to the contact.
windowed as (
    select
        *,
        least(
            sent_at + interval '24 hours',
            lead(sent_at) over (partition by contact_id order by sent_at asc, message_id asc)
        ) as window_ends_at
    from sends
),

inbound as (
    select
        message_id,
        contact_id,
        message_type,
        context_message_id,
        occurred_at,
        loaded_at
    from messages
    where direction = 'inbound'
),

replies as (
    select
        windowed.message_id,
        min(inbound.occurred_at) as replied_at,
        max(inbound.loaded_at) as loaded_at
    from windowed
    inner join inbound
        on
            windowed.contact_id = inbound.contact_id
            and windowed.sent_at < inbound.occurred_at
            and windowed.window_ends_at > inbound.occurred_at
    group by windowed.message_id
),

-- A click is the contact's own: a reply naming a message sent to someone else clicks nothing.
clicks as (
    select
        contact_id,
        context_message_id as message_id,
        min(occurred_at) as clicked_at,
        max(loaded_at) as loaded_at
    from inbound
    where message_type in ('button', 'interactive') and context_message_id is not null
    group by contact_id, context_message_id
),

opt_outs as (
    select
        windowed.message_id,
        min(preferences.occurred_at) filter (
            where preferences.preference = 'stop'
        ) as opted_out_at,
        max(preferences.occurred_at) filter (
            where preferences.preference = 'resume'
        ) as resumed_at,
        max(preferences.loaded_at) as loaded_at
    from windowed
    inner join preferences
        on
            windowed.contact_id = preferences.contact_id
            and windowed.sent_at < preferences.occurred_at
            and windowed.window_ends_at > preferences.occurred_at
    group by windowed.message_id
),

final as (
    select
        windowed.message_id,
        windowed.contact_id,
        windowed.business_phone_number_id,
        windowed.template_name,
        windowed.template_language,
        windowed.template_category,
        windowed.campaign_id,
        windowed.campaign_name,
        coalesce(message_delivery.delivery_status, 'sent') as delivery_status,
        coalesce(message_delivery.is_delivered, false) as is_delivered,
        coalesce(message_delivery.is_read, false) as is_read,
        coalesce(message_delivery.is_failed, false) as is_failed,
        message_delivery.error_code,
        message_delivery.seconds_to_read,
        replies.replied_at is not null as is_replied,
        extract(epoch from replies.replied_at - windowed.sent_at)::double precision
            as seconds_to_reply,
        clicks.clicked_at is not null as is_clicked,
        opt_outs.opted_out_at is not null as is_opted_out,
        coalesce(opt_outs.resumed_at > opt_outs.opted_out_at, false) as is_resumed,
        {{ to_reporting_time('windowed.sent_at') }}::date as sent_date,
        windowed.sent_at,
        windowed.window_ends_at,
        replies.replied_at,
        clicks.clicked_at,
        opt_outs.opted_out_at,
        greatest(
            windowed.loaded_at,
            message_delivery.loaded_at,
            replies.loaded_at,
            clicks.loaded_at,
            opt_outs.loaded_at
        ) as loaded_at
    from windowed
    left join message_delivery on windowed.message_id = message_delivery.message_id
    left join replies on windowed.message_id = replies.message_id
    left join clicks
        on windowed.message_id = clicks.message_id and windowed.contact_id = clicks.contact_id
    left join opt_outs on windowed.message_id = opt_outs.message_id
)

select * from final
{{ in_contact_order() }}
