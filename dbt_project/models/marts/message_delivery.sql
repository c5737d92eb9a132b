-- One row per outbound message: what happened to it, as a one-way state machine
-- (sent -> delivered -> read; failed is final). Built from which statuses exist and when they
-- happened, never from the order they arrived in, so a late older status moves nothing back.
{{
    config(
        materialized='incremental',
        incremental_strategy='replace_where',
        incremental_predicates=["message_id = any(array(select message_id from intermediate.messages_this_run))"],
        on_schema_change='fail',
        indexes=[{'columns': ['message_id']}, {'columns': ['contact_id']}, {'columns': ['sent_date']}],
    )
}}

with

-- What an incremental build recomputes (models/intermediate/run_state).
messages_this_run as (
    select * from {{ ref('messages_this_run') }}
),

outbound_messages as (
    select * from {{ ref('int_outbound_messages_unioned') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the messages that changed (messages_this_run).
        where message_id = any(array(select messages_this_run.message_id from messages_this_run))
    {% endif %}
),

statuses as (
    select * from {{ ref('int_message_statuses_pivoted') }}
    {% if is_incremental() %}
        -- An incremental build recomputes the messages that changed (messages_this_run).
        where message_id = any(array(select messages_this_run.message_id from messages_this_run))
    {% endif %}
),

joined as (
    select
        outbound_messages.message_id,
        outbound_messages.contact_id,
        outbound_messages.agent_id,
        outbound_messages.business_phone_number_id,
        statuses.error_title,
        statuses.pricing_category,
        statuses.pricing_model,
        statuses.error_code,
        statuses.is_billable,
        outbound_messages.sent_at,
        statuses.failed_status_at,
        -- Read implies delivered, even when the delivered notification never came.
        least(statuses.delivered_status_at, statuses.read_status_at) as reached_delivered_at,
        statuses.read_status_at,
        -- A failure counts unless the message had already been delivered or read.
        coalesce(
            statuses.failed_status_at
            <= coalesce(
                least(statuses.delivered_status_at, statuses.read_status_at),
                'infinity'::timestamptz
            ),
            false
        ) as is_failed,
        greatest(outbound_messages.loaded_at, statuses.loaded_at) as loaded_at
    from outbound_messages
    left join statuses
        on outbound_messages.message_id = statuses.message_id
),

final as (
    select
        message_id,
        contact_id,
        agent_id,
        business_phone_number_id,
        case
            when is_failed then 'failed'
            when read_status_at is not null then 'read'
            when reached_delivered_at is not null then 'delivered'
            else 'sent'
        end as delivery_status,
        case when is_failed then error_title end as error_title,
        pricing_category,
        pricing_model,
        case when is_failed then error_code end as error_code,
        extract(
            epoch from case when not is_failed then reached_delivered_at end - sent_at
        )::double precision as seconds_to_deliver,
        extract(
            epoch from case when not is_failed then read_status_at end - sent_at
        )::double precision as seconds_to_read,
        is_failed,
        not is_failed and reached_delivered_at is not null as is_delivered,
        not is_failed and read_status_at is not null as is_read,
        is_billable,
        {{ to_reporting_time('sent_at') }}::date as sent_date,
        sent_at,
        case when not is_failed then reached_delivered_at end as delivered_at,
        case when not is_failed then read_status_at end as read_at,
        case when is_failed then failed_status_at end as failed_at,
        loaded_at
    from joined
)

select * from final
